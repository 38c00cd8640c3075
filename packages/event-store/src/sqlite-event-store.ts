// The embedded log: one SQLite file in WAL mode, fsynced before an append returns
// (synchronous=FULL). Appends are written by a thread of their own (sqlite-writer.ts), so the
// fsync never blocks the thread that serves requests; reads use this thread's connection.
// Appends run in BEGIN IMMEDIATE transactions, so writers from several processes are serialised
// and global positions are assigned in commit order: a reader that sees position N has already
// been able to see every position below N.
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConcurrencyError, ConflictError, ValidationError } from '@cm/domain';
import type {
  AppendResult, EventStore, Position, ReadStreamOptions, StoredEvent, SubscribeOptions, Subscription,
} from './event-store.js';
import { chainFault, hashScheme, type HashScheme, type StreamHeadRow } from './hash-chain.js';
import { createSqliteWriter, type AppendOutcome, type GroupAppend, type SqliteWriter, type WriterSupervision } from './sqlite-writer.js';
import { registerWriter } from './sqlite-writer-registry.js';
import { pollingSubscription } from './polling-subscription.js';
import { storedEventOf, type EventRow } from './event-row.js';

export { WriterUnavailableError, type WriterSupervision } from './sqlite-writer.js';

type Row = EventRow<number | bigint>;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  position   INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id   TEXT NOT NULL UNIQUE,
  stream     TEXT NOT NULL,
  revision   INTEGER NOT NULL,
  type       TEXT NOT NULL,
  data       TEXT NOT NULL,
  metadata   TEXT NOT NULL,
  recorded_at TEXT NOT NULL,
  prev_hash  TEXT NOT NULL,
  hash       TEXT NOT NULL,
  UNIQUE (stream, revision)
);
CREATE TABLE IF NOT EXISTS streams (
  stream     TEXT PRIMARY KEY,
  revision   INTEGER NOT NULL,
  hash       TEXT NOT NULL,
  created_position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS streams_created ON streams (created_position);
CREATE INDEX IF NOT EXISTS events_stream_recorded ON events (stream, recorded_at);
`;

export type SqliteEventStoreOptions = {
  /** Path of the database file; its folder is created if missing. */
  path: string;
  now?: () => Date;
  /** How often a subscriber looks for events appended by other processes. */
  pollIntervalMs?: number;
  /** How the writer thread is restarted when it stops (logger, backoff, a test's hold on it). */
  writer?: WriterSupervision;
  /** Where a subscriber's onError that throws is reported; the subscription carries on (default console.error). */
  logError?: (message: string, err: unknown) => void;
};

export type ImportSummary = { events: number; streams: number };

export type SqliteEventStore = EventStore & {
  readonly db: Database.Database;
  unavailable(): string | null;
  /**
   * Restores already-hashed events (an archive, in global order) into an EMPTY log, keeping
   * ids, positions, recordedAt and hashes, so the restored log reads and verifies exactly as the
   * original did. `append` cannot do this: it stamps its own recordedAt and computes the hashes.
   * Each event must continue its stream's chain (hash recomputed) and come after the previous
   * one in position and recordedAt. One transaction: on any refusal nothing is written.
   */
  importEvents(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): Promise<ImportSummary>;
};

// SQLite rowids are signed 64-bit; a position beyond that cannot be kept.
const MAX_ROWID = 2n ** 63n - 1n;

export function openSqliteDatabase(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 10000');
  return db;
}

export function createSqliteEventStore(options: SqliteEventStoreOptions): SqliteEventStore {
  const now = options.now ?? (() => new Date());
  const pollIntervalMs = options.pollIntervalMs ?? 50;
  const logError = options.logError ?? ((message: string, err: unknown) => console.error(message, err));
  const db = openSqliteDatabase(options.path);
  db.exec(SCHEMA);
  const appended = new EventEmitter();
  appended.setMaxListeners(0);

  const stmt = {
    streamHead: db.prepare<[string], { revision: number; hash: string }>('SELECT revision, hash FROM streams WHERE stream = ?'),
    streamFrom: db.prepare<[string, number], Row>('SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision'),
    anyEvent: db.prepare<[], { one: number }>('SELECT 1 AS one FROM events LIMIT 1'),
    importInsert: db.prepare(
      `INSERT INTO events (position, event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
       VALUES (@position, @id, @stream, @revision, @type, @data, @metadata, @recordedAt, @prevHash, @hash)`,
    ),
    upsertStream: db.prepare(
      `INSERT INTO streams (stream, revision, hash, created_position) VALUES (@stream, @revision, @hash, @position)
       ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, hash = excluded.hash`,
    ),
    readAll: db.prepare<[number | bigint, number], Row>('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?'),
    head: db.prepare<[], { p: number | bigint | null }>('SELECT max(position) AS p FROM events'),
    streams: db.prepare<[], { stream: string }>('SELECT stream FROM streams ORDER BY created_position'),
    lastRecordedAt: db.prepare<[], { at: string | null }>("SELECT json_extract(metadata, '$.recordedAt') AS at FROM events ORDER BY position DESC LIMIT 1"),
    columnMismatch: db.prepare<[string], { revision: number; recorded_at: string; at: string | null }>(
      "SELECT revision, recorded_at, json_extract(metadata, '$.recordedAt') AS at FROM events WHERE stream = ? AND recorded_at IS NOT json_extract(metadata, '$.recordedAt') ORDER BY revision LIMIT 1",
    ),
  };
  stmt.readAll.safeIntegers(true);
  stmt.head.safeIntegers(true);

  const readStreamStatements = new Map<string, Database.Statement<Record<string, unknown>, Row>>();


  // Group commit: appends that arrive while the writer thread is busy (or in the same turn of the
  // event loop when it is idle) share one transaction and so one fsync. Each runs in its own
  // savepoint, so one refused append (a stale revision) does not undo the others; every caller is
  // answered only after the commit is durable. The fsync blocks the writer thread, not this one.
  type Pending = GroupAppend & { resolve: (r: AppendResult) => void; reject: (e: unknown) => void };
  // Started at the first append: a store opened only to read never starts a thread.
  let writer: SqliteWriter | null = null;
  const startedWriter = () => (writer ??= createSqliteWriter(options.path, options.writer));
  let pending: Pending[] = [];
  let writing = false;
  let closed = false;

  function settle(p: Pending, o: AppendOutcome): boolean {
    if ('conflict' in o) {
      p.reject(new ConcurrencyError(o.conflict.stream, o.conflict.expected, o.conflict.actual));
      return false;
    }
    if ('error' in o) {
      p.reject(new Error(o.error.message));
      return false;
    }
    const r = o.ok;
    if ('duplicateRows' in r) {
      const found = r.duplicateRows.map(storedEventOf);
      const last = found.at(-1)!;
      p.resolve({ revision: last.revision, position: last.position, events: found, duplicate: true });
      return false;
    }
    const events: StoredEvent[] = r.written.map((w, i) => {
      const e = p.events[i]!;
      return { id: e.id, stream: p.stream, revision: w.revision, position: w.position, type: e.type, data: e.data, metadata: { ...e.metadata, recordedAt: r.recordedAt!, hashScheme: r.hashScheme! }, prevHash: w.prevHash, hash: w.hash };
    });
    p.resolve({ revision: r.revision, position: r.position, events, duplicate: false });
    return events.length > 0;
  }

  function flush(): void {
    if (writing || pending.length === 0 || closed) return;
    const group = pending;
    pending = [];
    writing = true;
    startedWriter()
      .write(group.map((p) => ({ stream: p.stream, events: p.events, expected: p.expected })), now().toISOString())
      .then(
        (outcomes) => {
          let wrote = false;
          outcomes.forEach((o, i) => {
            if (settle(group[i]!, o)) wrote = true;
          });
          if (wrote) appended.emit('appended');
        },
        (err: unknown) => {
          for (const p of group) p.reject(err);
        },
      )
      .finally(() => {
        writing = false;
        flush();
      });
  }

  // An import holds a write transaction across awaits (it reads its source as it goes); appends
  // would queue behind its lock (or, once it ends, mix into the restored log), so they are refused
  // until it ends.
  let importing = false;

  async function importEvents(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): Promise<ImportSummary> {
    if (importing) throw new ConflictError('an import into this log is already running', 'import_running');
    // Queued appends would run as savepoints inside the import's transaction: refuse rather than mix them in.
    if (pending.length > 0 || writing) throw new ConflictError('appends are in flight on this log: an archive is imported only into an idle, empty log', 'log_not_empty');
    importing = true;
    const heads = new Map<string, { revision: number; hash: string; scheme: HashScheme; created: bigint }>();
    let count = 0;
    try {
      // IMMEDIATE: other processes cannot write between the emptiness check and the commit.
      db.exec('BEGIN IMMEDIATE');
      if (stmt.anyEvent.get()) throw new ConflictError('the log already holds events: an archive is imported only into an empty log', 'log_not_empty');
      let lastPosition = 0n;
      let lastRecordedAt = '';
      for await (const e of events) {
        const head = heads.get(e.stream);
        const revision = head ? head.revision + 1 : 0;
        const refuse = (reason: string) => new ValidationError(`import refused at ${e.stream} revision ${e.revision} (event ${e.id}): ${reason}`, [], 'import_refused');
        if (e.revision !== revision) throw refuse(`the stream's next revision is ${revision}`);
        // Either scheme: an archive of a log written under scheme 1 restores as it was.
        const fault = chainFault(e, head ? { hash: head.hash, scheme: head.scheme } : null);
        if (fault) throw refuse(fault);
        const prevHash = e.prevHash;
        const position = BigInt(e.position);
        if (position <= lastPosition || position > MAX_ROWID) throw refuse(`position ${e.position} is not after ${lastPosition} (or beyond what SQLite can keep)`);
        // The rest of this adapter relies on it: "as of an instant" is a prefix of the log.
        if (e.metadata.recordedAt < lastRecordedAt) throw refuse(`recordedAt ${e.metadata.recordedAt} is before the previous event's ${lastRecordedAt}`);
        stmt.importInsert.run({
          position, id: e.id, stream: e.stream, revision, type: e.type, data: JSON.stringify(e.data), metadata: JSON.stringify(e.metadata),
          recordedAt: e.metadata.recordedAt, prevHash, hash: e.hash,
        });
        heads.set(e.stream, { revision, hash: e.hash, scheme: hashScheme(e.metadata)!, created: head?.created ?? position });
        lastPosition = position;
        lastRecordedAt = e.metadata.recordedAt;
        count++;
      }
      for (const [stream, h] of heads) stmt.upsertStream.run({ stream, revision: h.revision, hash: h.hash, position: h.created });
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw err;
    } finally {
      importing = false;
    }
    if (count > 0) appended.emit('appended');
    return { events: count, streams: heads.size };
  }

  const subscriptions = new Set<() => void>();

  const store: SqliteEventStore = {
    db,
    importEvents,
    unavailable: () => writer?.unavailable() ?? null,
    append(stream, events, { expectedRevision }) {
      if (closed) return Promise.reject(new Error('the event store is closed'));
      if (importing) return Promise.reject(new ConflictError('the log is being restored from an archive; appends wait until the import ends', 'import_running'));
      return new Promise<AppendResult>((resolve, reject) => {
        pending.push({ stream, events, expected: expectedRevision, resolve, reject });
        // While a group is being written, the next one gathers and goes when it is durable.
        if (pending.length === 1 && !writing) setImmediate(flush);
      });
    },
    async readStream(stream, opts: ReadStreamOptions = {}) {
      // The command runner's question before every command: "anything after the revision I
      // hold?" Usually no, and the stream's head row says so without touching the events.
      if (opts.toRevision === undefined && opts.recordedUpTo === undefined && opts.limit === undefined) {
        const from = opts.fromRevision ?? 0;
        const head = stmt.streamHead.get(stream);
        if (!head || head.revision < from) return [];
        return stmt.streamFrom.all(stream, from).map(storedEventOf);
      }
      const clauses = ['stream = @stream', 'revision >= @from'];
      if (opts.toRevision !== undefined) clauses.push('revision <= @to');
      // The hashed copy in the metadata, not the recorded_at column (which no hash covers and
      // which an edit of the file could move): what `asOf` keeps is what /integrity vouches for.
      if (opts.recordedUpTo !== undefined) clauses.push("json_extract(metadata, '$.recordedAt') <= @upTo");
      const sql = `SELECT * FROM events WHERE ${clauses.join(' AND ')} ORDER BY revision LIMIT @limit`;
      let prepared = readStreamStatements.get(sql);
      if (!prepared) readStreamStatements.set(sql, (prepared = db.prepare<Record<string, unknown>, Row>(sql)));
      const rows = prepared.all({
        stream, from: opts.fromRevision ?? 0, to: opts.toRevision, upTo: opts.recordedUpTo, limit: opts.limit ?? -1,
      });
      return rows.map(storedEventOf);
    },
    async streamRevision(stream) {
      return stmt.streamHead.get(stream)?.revision ?? -1;
    },
    async streamHead(stream): Promise<StreamHeadRow | null> {
      return stmt.streamHead.get(stream) ?? null;
    },
    async storageFault(stream) {
      // recorded_at is a copy of the hashed metadata.recordedAt, kept for the index; a copy that
      // disagrees was edited outside the store.
      const m = stmt.columnMismatch.get(stream);
      return m ? { revision: m.revision, reason: `the recorded_at column (${m.recorded_at}) of revision ${m.revision} is not the recordedAt its hash covers (${m.at})` } : null;
    },
    async lastRecordedAt() {
      return stmt.lastRecordedAt.get()?.at ?? null;
    },
    async readAll({ after, limit }) {
      return stmt.readAll.all(after === null ? 0n : BigInt(after), limit).map(storedEventOf);
    },
    async headPosition() {
      const p = stmt.head.get()?.p;
      return p === null || p === undefined ? null : String(p);
    },
    async listStreams() {
      return stmt.streams.all().map((r) => r.stream);
    },
    subscribe(opts: SubscribeOptions): Subscription {
      return pollingSubscription(opts, {
        readAll: (o) => store.readAll(o), pollIntervalMs, logError, label: 'SQLite subscription',
        onPoke: (poke) => {
          appended.on('appended', poke);
          subscriptions.add(poke);
          return () => {
            appended.off('appended', poke);
            subscriptions.delete(poke);
          };
        },
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const poke of subscriptions) poke();
      // The group being written is finished and answered; appends still queued are refused.
      const refused = pending;
      pending = [];
      for (const p of refused) p.reject(new Error('the event store was closed before this append was written'));
      await writer?.close();
      db.close();
    },
  };
  registerWriter(store, startedWriter);
  return store;
}
