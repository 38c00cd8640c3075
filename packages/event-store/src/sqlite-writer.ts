// The thread that writes the embedded log (sqlite-writer.worker.mjs) and how the store talks to
// it: one group of appends at a time, answered after its COMMIT (fsync) on that thread. While a
// group is being made durable, this thread keeps serving requests and queueing the next group.
// When the thread stops (it threw, exited, was killed), it is started again after a backoff;
// until it is back, appends are refused with a retryable WriterUnavailableError.
import { Worker } from 'node:worker_threads';
import type { Logger } from '@cm/platform';
import type { ExpectedRevision, NewEvent } from './event-store.js';

export type WrittenEvent = { revision: number; position: string; prevHash: string; hash: string };
export type RawRow = {
  position: number | bigint; event_id: string; stream: string; revision: number; type: string; data: string; metadata: string; prev_hash: string; hash: string;
};
export type AppendOutcome =
  | { ok: { revision: number; position: string; recordedAt?: string; hashScheme?: number; written: WrittenEvent[] } | { duplicateRows: RawRow[] } }
  | { conflict: { stream: string; expected: number; actual: number } }
  | { error: { message: string; name?: string; code?: string } };

export type GroupAppend = { stream: string; events: NewEvent[]; expected: ExpectedRevision };

/** Test hook: make the writer thread stop now, or during its next group just before or after COMMIT. */
export type WriterFault = 'crash' | 'exit-before-commit' | 'exit-after-commit';

export type WriterSupervision = {
  /** Where "stopped; restarting" and "restarted" are said; stderr when not given. */
  logger?: Pick<Logger, 'warn' | 'info'>;
  /** Delay before the first restart, doubled after each failed one up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Awaited before each restart: tests hold the writer down with it. */
  beforeRestart?: () => Promise<void>;
};

/**
 * The writer thread is not running: the append was refused, or was in flight when the thread
 * stopped. Retryable. `outcomeUnknown`: it was handed to the thread, whose transaction is atomic,
 * so it was committed whole or not at all; retrying it with the same event ids is answered with
 * what was written (a repeat, `duplicate: true`) and never writes it twice.
 */
export class WriterUnavailableError extends Error {
  readonly code = 'writer_unavailable';
  constructor(readonly reason: string, readonly outcomeUnknown: boolean) {
    super(
      outcomeUnknown
        ? `the log writer thread stopped while this append was being written (${reason}): it was committed whole or not at all; retry with the same event ids and a repeat is answered with what was written, never written twice`
        : `the log writer thread is restarting (${reason}): nothing was written; retry shortly`,
    );
  }
}

export type SqliteWriter = {
  /** Appends a group in one transaction; resolves with one outcome per append once it is durable. */
  write(group: GroupAppend[], clock: string): Promise<AppendOutcome[]>;
  /** Why appends are refused at this moment (the thread stopped and is not back yet), or null. */
  unavailable(): string | null;
  /** Test hook (see WriterFault); reached through @cm/event-store/testing only. */
  injectFault(fault: WriterFault): void;
  /** Waits for the group in flight, then closes the writer's connection and thread. */
  close(): Promise<void>;
};

type Waiting = { resolve: (o: AppendOutcome[]) => void; reject: (e: unknown) => void };
type WorkerMessage = { type?: 'ready'; id?: number; outcomes?: AppendOutcome[]; error?: { message: string } };

const stderrLog: Pick<Logger, 'warn' | 'info'> = {
  warn: ((obj: object, msg: string) => console.warn(msg, obj)) as Logger['warn'],
  info: ((obj: object, msg: string) => console.warn(msg, obj)) as Logger['info'],
};

export function createSqliteWriter(path: string, supervision: WriterSupervision = {}): SqliteWriter {
  const log = supervision.logger ?? stderrLog;
  const initialBackoffMs = supervision.initialBackoffMs ?? 100;
  const maxBackoffMs = supervision.maxBackoffMs ?? 5000;
  let backoffMs = initialBackoffMs;
  let nextId = 1;
  const waiting = new Map<number, Waiting>();
  let worker: Worker;
  let exited: Promise<void>;
  /** Set from the moment the thread stops until a new one says it is ready. */
  let down: string | null = null;
  let closing = false;
  let restartTimer: NodeJS.Timeout | null = null;

  function start(): void {
    const w = new Worker(new URL('./sqlite-writer.worker.mjs', import.meta.url), { workerData: { path } });
    // An idle writer does not keep the process alive (an open database never did); one with a
    // group in flight does, so a caller awaiting an append is always answered.
    w.unref();
    worker = w;
    exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    let stopped = false;
    const stop = (reason: string) => {
      if (stopped) return;
      stopped = true;
      stoppedWith(reason);
    };
    w.on('message', (m: WorkerMessage) => {
      if (m.type === 'ready') {
        if (down !== null) {
          log.info({ component: 'sqlite-writer' }, 'sqlite writer thread restarted');
          down = null;
        }
        return;
      }
      const entry = waiting.get(m.id!);
      if (!entry) return;
      waiting.delete(m.id!);
      if (waiting.size === 0) w.unref();
      if (m.outcomes) {
        // A thread that commits is healthy again: the next failure starts from the short delay.
        backoffMs = initialBackoffMs;
        entry.resolve(m.outcomes);
      } else entry.reject(new Error(`appending to the log failed: ${m.error?.message ?? 'unknown error'}`));
    });
    w.on('error', (err) => stop(`it threw: ${err.message}`));
    w.on('exit', (code) => stop(`it exited with code ${code}`));
  }

  function stoppedWith(reason: string): void {
    // What was handed to the thread and not answered was committed whole or not at all.
    for (const entry of waiting.values()) entry.reject(new WriterUnavailableError(reason, true));
    waiting.clear();
    if (closing) return;
    down = reason;
    const delay = backoffMs;
    backoffMs = Math.min(backoffMs * 2, maxBackoffMs);
    log.warn({ component: 'sqlite-writer', reason, restartInMs: delay }, `sqlite writer thread stopped: ${reason}; restarting`);
    restartTimer = setTimeout(() => {
      restartTimer = null;
      void restart();
    }, delay);
    restartTimer.unref();
  }

  async function restart(): Promise<void> {
    // The old thread may still be unwinding ('error' comes before 'exit'): its connection
    // (and any write lock it held) is released before the new one opens the file.
    worker.terminate().catch(() => undefined);
    await exited;
    await supervision.beforeRestart?.();
    if (!closing) start();
  }

  start();

  return {
    write(group, clock) {
      if (down !== null) return Promise.reject(new WriterUnavailableError(down, false));
      const id = nextId++;
      return new Promise<AppendOutcome[]>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage({ id, group, clock });
      });
    },
    unavailable: () => down,
    injectFault(fault) {
      worker.postMessage({ type: 'fault', fault });
    },
    async close() {
      closing = true;
      // A restart waiting on its delay (or its hook) sees `closing` and starts nothing.
      if (restartTimer) clearTimeout(restartTimer);
      // Messages are handled in order: the group in flight finishes before the close.
      worker.ref();
      worker.postMessage({ type: 'close' });
      await exited;
    },
  };
}
