// Which writer belongs to which SQLite store, for the test hook in ./testing/writer-faults.ts
// only: the store's own API has no way to stop its writer thread.
import type { EventStore } from './event-store.js';
import type { SqliteWriter } from './sqlite-writer.js';

const writers = new WeakMap<EventStore, () => SqliteWriter>();

export function registerWriter(store: EventStore, writer: () => SqliteWriter): void {
  writers.set(store, writer);
}

export function writerOf(store: EventStore): SqliteWriter {
  const writer = writers.get(store);
  if (!writer) throw new Error('not a SQLite event store: it has no writer thread');
  return writer();
}
