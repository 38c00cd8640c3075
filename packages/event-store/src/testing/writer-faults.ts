// Test hook: stop a SQLite store's writer thread at a chosen moment (@cm/event-store/testing).
import type { EventStore } from '../event-store.js';
import type { WriterFault, WriterSupervision } from '../sqlite-writer.js';
import { writerOf } from '../sqlite-writer-registry.js';

export type { WriterFault } from '../sqlite-writer.js';

/**
 * `crash`: the thread throws an uncaught error now. `exit-before-commit` / `exit-after-commit`:
 * it exits during its next group of appends, inside the transaction or once it has committed.
 */
export function injectWriterFault(store: EventStore, fault: WriterFault): void {
  writerOf(store).injectFault(fault);
}

/** A hold on the writer's restart (pass `beforeRestart` to the store): released by the test. */
export function restartGate(): { beforeRestart: () => Promise<void>; reached: Promise<void>; release(): void } {
  let release!: () => void;
  let reach!: () => void;
  const reached = new Promise<void>((r) => (reach = r));
  const opened = new Promise<void>((r) => (release = r));
  return {
    beforeRestart: () => {
      reach();
      return opened;
    },
    reached,
    release: () => release(),
  };
}

export type WriterLogLine = { level: 'warn' | 'info'; msg: string; fields: Record<string, unknown> };

/** A logger for `writer.logger` that keeps the writer's lines and says when the next restart is done. */
export function writerLog(): { logger: WriterSupervision['logger'] & object; lines: WriterLogLine[]; restarted(): Promise<void> } {
  const lines: WriterLogLine[] = [];
  let waiters: (() => void)[] = [];
  const line = (level: WriterLogLine['level']) => (fields: Record<string, unknown>, msg: string) => {
    lines.push({ level, msg, fields });
    if (msg === 'sqlite writer thread restarted') {
      for (const w of waiters) w();
      waiters = [];
    }
  };
  const logger = { warn: line('warn'), info: line('info') } as unknown as NonNullable<WriterSupervision['logger']>;
  return { logger, lines, restarted: () => new Promise<void>((r) => waiters.push(r)) };
}
