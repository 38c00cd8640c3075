// The embedded log: one SQLite file in WAL mode, fsynced before an append returns
// (synchronous=FULL). Appends run in BEGIN IMMEDIATE transactions, so writers from several
// processes are serialised and global positions are assigned in commit order: a reader that
// sees position N has already been able to see every position below N.
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConcurrencyError, ConflictError, ValidationError } from '@cm/domain';
import type {
  AppendResult, EventStore, ExpectedRevision, NewEvent, Position, ReadStreamOptions, StoredEvent, SubscribeOptions, Subscription,
} from './event-store';
import { GENESIS_HASH, eventHash } from './hash-chain';

type Row = {
  position: number | bigint;
  event_id: string;
  stream: string;
  revision: number;
  type: string;
  data: string;
  metadata: string;
  prev_hash: string;
  hash: string;
};

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
};

export type ImportSummary = { events: number; streams: number };

export type SqliteEventStore = EventStore & {
  readonly db: Database.Database;
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
  const db = openSqliteDatabase(options.path);
  db.exec(SCHEMA);
  const appended = new EventEmitter();
  appended.setMaxListeners(0);

  const stmt = {
    streamHead: db.prepare<[string], { revision: number; hash: string }>('SELECT revision, hash FROM streams WHERE stream = ?'),
    byEventId: db.prepare<[string], Row>('SELECT * FROM events WHERE event_id = ?'),
    lastRecordedAt: db.prepare<[], { recorded_at: string }>('SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1'),
    anyEvent: db.prepare<[], { one: number }>('SELECT 1 AS one FROM events LIMIT 1'),
    importInsert: db.prepare(
      `INSERT INTO events (position, event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
       VALUES (@position, @id, @stream, @revision, @type, @data, @metadata, @recordedAt, @prevHash, @hash)`,
    ),
    insert: db.prepare(
      `INSERT INTO events (event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
       VALUES (@id, @stream, @revision, @type, @data, @metadata, @recordedAt, @prevHash, @hash)`,
    ),
    upsertStream: db.prepare(
      `INSERT INTO streams (stream, revision, hash, created_position) VALUES (@stream, @revision, @hash, @position)
       ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, hash = excluded.hash`,
    ),
    readAll: db.prepare<[number | bigint, number], Row>('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?'),
    head: db.prepare<[], { p: number | bigint | null }>('SELECT max(position) AS p FROM events'),
    streams: db.prepare<[], { stream: string }>('SELECT stream FROM streams ORDER BY created_position'),
  };
  stmt.readAll.safeIntegers(true);
  stmt.head.safeIntegers(true);

  const readStreamStatements = new Map<string, Database.Statement<Record<string, unknown>, Row>>();

  const toStored = (r: Row): StoredEvent => ({
    id: r.event_id,
    stream: r.stream,
    revision: Number(r.revision),
    position: String(r.position),
    type: r.type,
    data: JSON.parse(r.data) as unknown,
    metadata: JSON.parse(r.metadata) as StoredEvent['metadata'],
    prevHash: r.prev_hash,
    hash: r.hash,
  });

  const appendTx = db.transaction((stream: string, events: NewEvent[], expected: ExpectedRevision): AppendResult => {
    const first = events[0];
    if (first) {
      const existing = stmt.byEventId.get(first.id);
      if (existing) return repeatedAppend(stream, events, existing);
    }
    const head = stmt.streamHead.get(stream);
    const current = head ? head.revision : -1;
    if (expected !== 'any') {
      const want = expected === 'no_stream' ? -1 : expected;
      if (want !== current) throw new ConcurrencyError(stream, want, current);
    }
    if (events.length === 0) {
      const last = current >= 0 ? (db.prepare<[string, number], Row>('SELECT * FROM events WHERE stream = ? AND revision = ?').get(stream, current)) : undefined;
      return { revision: current, position: last ? String(last.position) : '0', events: [], duplicate: false };
    }
    // recordedAt never goes backwards, so "as of an instant" is always a prefix of the log.
    const clock = now().toISOString();
    const lastAt = stmt.lastRecordedAt.get()?.recorded_at;
    const recordedAt = lastAt && lastAt > clock ? lastAt : clock;
    let prevHash = head?.hash ?? GENESIS_HASH;
    let revision = current;
    const stored: StoredEvent[] = [];
    for (const e of events) {
      revision++;
      const metadata = { ...e.metadata, recordedAt };
      const hash = eventHash(prevHash, e.type, e.data, metadata);
      const info = stmt.insert.run({
        id: e.id, stream, revision, type: e.type, data: JSON.stringify(e.data), metadata: JSON.stringify(metadata), recordedAt, prevHash, hash,
      });
      stored.push({ id: e.id, stream, revision, position: String(info.lastInsertRowid), type: e.type, data: e.data, metadata, prevHash, hash });
      prevHash = hash;
    }
    const last = stored.at(-1)!;
    stmt.upsertStream.run({ stream, revision, hash: prevHash, position: stored[0]!.position });
    return { revision, position: last.position, events: stored, duplicate: false };
  });

  function repeatedAppend(stream: string, events: NewEvent[], first: Row): AppendResult {
    // The same ids again: answer what the first append wrote, write nothing.
    const found: StoredEvent[] = [toStored(first)];
    for (const e of events.slice(1)) {
      const r = stmt.byEventId.get(e.id);
      if (!r) throw new Error(`append to ${stream} repeats event ${first.event_id} but not ${e.id}: refusing a partial duplicate`);
      found.push(toStored(r));
    }
    if (found.some((e) => e.stream !== stream)) {
      throw new Error(`event ${first.event_id} was already appended to stream ${first.stream}, not ${stream}`);
    }
    const last = found.at(-1)!;
    return { revision: last.revision, position: last.position, events: found, duplicate: true };
  }

  // Group commit: appends that arrive in the same turn of the event loop share one transaction
  // and so one fsync. Each runs in its own savepoint, so one refused append (a stale revision)
  // does not undo the others; every caller is answered only after the commit is durable.
  type Pending = { stream: string; events: NewEvent[]; expected: ExpectedRevision; resolve: (r: AppendResult) => void; reject: (e: unknown) => void };
  let pending: Pending[] = [];
  const groupTx = db.transaction((group: Pending[]) =>
    group.map((p) => {
      try {
        return { ok: appendTx(p.stream, p.events, p.expected) };
      } catch (err) {
        return { err };
      }
    }),
  );
  function flush(): void {
    const group = pending;
    pending = [];
    let outcomes: ({ ok: AppendResult } | { err: unknown })[];
    try {
      outcomes = groupTx.immediate(group);
    } catch (err) {
      for (const p of group) p.reject(err);
      return;
    }
    let wrote = false;
    outcomes.forEach((o, i) => {
      if ('ok' in o) {
        if (!o.ok.duplicate && o.ok.events.length > 0) wrote = true;
        group[i]!.resolve(o.ok);
      } else group[i]!.reject(o.err);
    });
    if (wrote) appended.emit('appended');
  }

  // An import holds a write transaction across awaits (it reads its source as it goes); an
  // append on this connection meanwhile would land inside it, so appends are refused until it ends.
  let importing = false;

  async function importEvents(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): Promise<ImportSummary> {
    if (importing) throw new ConflictError('an import into this log is already running', 'import_running');
    // Queued appends would run as savepoints inside the import's transaction: refuse rather than mix them in.
    if (pending.length > 0) throw new ConflictError('appends are in flight on this log: an archive is imported only into an idle, empty log', 'log_not_empty');
    importing = true;
    const heads = new Map<string, { revision: number; hash: string; created: bigint }>();
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
        const prevHash = head?.hash ?? GENESIS_HASH;
        const refuse = (reason: string) => new ValidationError(`import refused at ${e.stream} revision ${e.revision} (event ${e.id}): ${reason}`, [], 'import_refused');
        if (e.revision !== revision) throw refuse(`the stream's next revision is ${revision}`);
        if (e.prevHash !== prevHash) throw refuse('prevHash does not link to the previous event of its stream');
        if (eventHash(prevHash, e.type, e.data, e.metadata) !== e.hash) throw refuse('the hash does not match the event');
        const position = BigInt(e.position);
        if (position <= lastPosition || position > MAX_ROWID) throw refuse(`position ${e.position} is not after ${lastPosition} (or beyond what SQLite can keep)`);
        // The rest of this adapter relies on it: "as of an instant" is a prefix of the log.
        if (e.metadata.recordedAt < lastRecordedAt) throw refuse(`recordedAt ${e.metadata.recordedAt} is before the previous event's ${lastRecordedAt}`);
        stmt.importInsert.run({
          position, id: e.id, stream: e.stream, revision, type: e.type, data: JSON.stringify(e.data), metadata: JSON.stringify(e.metadata),
          recordedAt: e.metadata.recordedAt, prevHash, hash: e.hash,
        });
        heads.set(e.stream, { revision, hash: e.hash, created: head?.created ?? position });
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

  let closed = false;
  const subscriptions = new Set<() => void>();

  const store: SqliteEventStore = {
    db,
    importEvents,
    append(stream, events, { expectedRevision }) {
      if (importing) return Promise.reject(new ConflictError('the log is being restored from an archive; appends wait until the import ends', 'import_running'));
      return new Promise<AppendResult>((resolve, reject) => {
        pending.push({ stream, events, expected: expectedRevision, resolve, reject });
        if (pending.length === 1) setImmediate(flush);
      });
    },
    async readStream(stream, opts: ReadStreamOptions = {}) {
      const clauses = ['stream = @stream', 'revision >= @from'];
      if (opts.toRevision !== undefined) clauses.push('revision <= @to');
      if (opts.recordedUpTo !== undefined) clauses.push('recorded_at <= @upTo');
      const sql = `SELECT * FROM events WHERE ${clauses.join(' AND ')} ORDER BY revision LIMIT @limit`;
      let prepared = readStreamStatements.get(sql);
      if (!prepared) readStreamStatements.set(sql, (prepared = db.prepare<Record<string, unknown>, Row>(sql)));
      const rows = prepared.all({
        stream, from: opts.fromRevision ?? 0, to: opts.toRevision, upTo: opts.recordedUpTo, limit: opts.limit ?? -1,
      });
      return rows.map(toStored);
    },
    async streamRevision(stream) {
      return stmt.streamHead.get(stream)?.revision ?? -1;
    },
    async readAll({ after, limit }) {
      return stmt.readAll.all(after === null ? 0n : BigInt(after), limit).map(toStored);
    },
    async headPosition() {
      const p = stmt.head.get()?.p;
      return p === null || p === undefined ? null : String(p);
    },
    async listStreams() {
      return stmt.streams.all().map((r) => r.stream);
    },
    subscribe(opts: SubscribeOptions): Subscription {
      let active = true;
      let wake: (() => void) | null = null;
      const poke = () => wake?.();
      appended.on('appended', poke);
      subscriptions.add(poke);
      const batchSize = opts.batchSize ?? 500;
      let after: Position | null = opts.after;
      const done = (async () => {
        while (active) {
          try {
            const batch = await store.readAll({ after, limit: batchSize });
            if (batch.length > 0) {
              await opts.onEvents(batch);
              after = batch.at(-1)!.position;
              continue;
            }
          } catch (err) {
            if (!active) break;
            opts.onError(err);
          }
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, pollIntervalMs);
            wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
          wake = null;
        }
      })();
      return {
        async close() {
          active = false;
          appended.off('appended', poke);
          subscriptions.delete(poke);
          poke();
          await done;
        },
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const poke of subscriptions) poke();
      db.close();
    },
  };
  return store;
}
