// The thread that writes the embedded log (sqlite-writer.worker.mjs) and how the store talks to
// it: one group of appends at a time, answered after its COMMIT (fsync) on that thread. While a
// group is being made durable, this thread keeps serving requests and queueing the next group.
import { Worker } from 'node:worker_threads';
import type { ExpectedRevision, NewEvent } from './event-store';

export type WrittenEvent = { revision: number; position: string; prevHash: string; hash: string };
export type RawRow = {
  position: number | bigint; event_id: string; stream: string; revision: number; type: string; data: string; metadata: string; prev_hash: string; hash: string;
};
export type AppendOutcome =
  | { ok: { revision: number; position: string; recordedAt?: string; written: WrittenEvent[] } | { duplicateRows: RawRow[] } }
  | { conflict: { stream: string; expected: number; actual: number } }
  | { error: { message: string; name?: string; code?: string } };

export type GroupAppend = { stream: string; events: NewEvent[]; expected: ExpectedRevision };

export type SqliteWriter = {
  /** Appends a group in one transaction; resolves with one outcome per append once it is durable. */
  write(group: GroupAppend[], clock: string): Promise<AppendOutcome[]>;
  /** Waits for the group in flight, then closes the writer's connection and thread. */
  close(): Promise<void>;
};

export function createSqliteWriter(path: string): SqliteWriter {
  const worker = new Worker(new URL('./sqlite-writer.worker.mjs', import.meta.url), { workerData: { path } });
  // An idle writer does not keep the process alive (an open database never did); one with a
  // group in flight does, so a caller awaiting an append is always answered.
  worker.unref();
  let nextId = 1;
  let failed: Error | null = null;
  const waiting = new Map<number, { resolve: (o: AppendOutcome[]) => void; reject: (e: unknown) => void }>();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));

  const failAll = (err: Error) => {
    failed ??= err;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
    worker.unref();
  };
  worker.on('message', (m: { id: number; outcomes?: AppendOutcome[]; error?: { message: string } }) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    if (waiting.size === 0) worker.unref();
    if (m.outcomes) w.resolve(m.outcomes);
    else w.reject(new Error(`appending to the log failed: ${m.error?.message ?? 'unknown error'}`));
  });
  worker.on('error', (err) => failAll(new Error(`the log writer thread failed: ${err.message}`, { cause: err })));
  worker.on('exit', (code) => failAll(new Error(`the log writer thread exited (code ${code})`)));

  return {
    write(group, clock) {
      if (failed) return Promise.reject(failed);
      const id = nextId++;
      return new Promise<AppendOutcome[]>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage({ id, group, clock });
      });
    },
    async close() {
      if (!failed) {
        // Messages are handled in order: the group in flight finishes before the close.
        worker.ref();
        worker.postMessage({ type: 'close' });
      }
      await exited;
    },
  };
}
