// The log on a PostgreSQL server, for deployments of several machines (docs/architecture.md).
// - Schema: numbered migrations (postgres-migrations.ts), applied at open unless told not to.
// - Order: every append transaction first locks the one row of `log_head` (SELECT ... FOR
//   UPDATE), then takes the next positions from it. Appends are so serialised: the next writer
//   gets the row only after the previous one has committed and become visible, so positions are
//   contiguous and committed in order, and a reader that sees position N can already see every
//   position below N (none is ever skipped, the failure of sequence-numbered logs).
// - Group commit: appends gathered in this process while a transaction runs share the next
//   one (each in its own savepoint), so one commit (one WAL flush) answers many commands.
// - Durability: synchronous_commit=on for every connection and transaction of the store;
//   an append is answered only after its COMMIT returned.
// - Subscriptions wake on LISTEN/NOTIFY (the append notifies in its transaction, delivered at
//   commit), and poll as the fallback when the listening connection is down.
import { ConcurrencyError, ConflictError, ValidationError } from '@cm/domain';
import pg from 'pg';
import type {
  AppendResult, EventStore, ExpectedRevision, NewEvent, Position, ReadStreamOptions, StoredEvent, SubscribeOptions, Subscription,
} from './event-store.js';
import { CURRENT_HASH_SCHEME, eventHash, genesisHash } from './event-hash.mjs';
import { chainFault, hashScheme, type HashScheme, type StreamHeadRow } from './hash-chain.js';
import { LATEST_SCHEMA_VERSION, SchemaTooNewError, migratePostgres } from './postgres-migrations.js';
import type { ImportSummary } from './sqlite-event-store.js';
import { pollingSubscription } from './polling-subscription.js';
import { storedEventOf, type EventRow } from './event-row.js';

export { LATEST_SCHEMA_VERSION, MIGRATIONS, SchemaTooNewError, migratePostgres, type MigrationReport } from './postgres-migrations.js';

export const NOTIFY_CHANNEL = 'cm_events_appended';

type Row = EventRow<string>;

export type PostgresEventStoreOptions = {
  /** postgres://user@host:5432/db (or postgresql://). */
  connectionString: string;
  now?: () => Date;
  /** Pool size (default 10). */
  maxConnections?: number;
  /** How often a subscriber reads the log when no notification came (default 1000 ms). */
  pollIntervalMs?: number;
  /** Apply missing migrations at open (default true); false: refuse a schema that is not current. */
  migrate?: boolean;
  /** Where errors that are not a caller's are reported (default console.error). */
  logError?: (message: string, err: unknown) => void;
  /** Where a reconnection of the listening connection is reported (default console.warn). */
  logInfo?: (message: string) => void;
};

export type PostgresEventStore = EventStore & {
  readonly pool: pg.Pool;
  /** Restores an archive into an EMPTY log (see SqliteEventStore.importEvents): one transaction, ids, positions, recordedAt and hashes kept. */
  importEvents(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): Promise<ImportSummary>;
  /** True while the LISTEN connection is up (subscribers wake on notifications, not only on the poll). */
  listening(): boolean;
};

// Error codes PostgreSQL answers for a transaction that may simply be run again.
const RETRYABLE = new Set(['40001', '40P01']);

class Conflict extends Error {
  constructor(readonly stream: string, readonly expected: number, readonly actual: number) {
    super(`stream ${stream} is at revision ${actual}, not ${expected}`);
  }
}

type Pending = {
  stream: string;
  events: NewEvent[];
  expected: ExpectedRevision;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
};


export async function openPostgresEventStore(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
  const now = options.now ?? (() => new Date());
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const logError = options.logError ?? ((message: string, err: unknown) => console.error(message, err));
  const logInfo = options.logInfo ?? ((message: string) => console.warn(message));
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    // Whatever the server's or the database's default: a commit is durable when it returns.
    options: '-c synchronous_commit=on',
  });
  // An idle connection the server drops is replaced at the next query; the error is only reported.
  pool.on('error', (err) => logError('PostgreSQL event store: an idle connection failed', err));
  try {
    if (options.migrate === false) {
      const { rows } = await pool.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version').catch(() => ({ rows: [{ v: 0 }] }));
      const v = rows[0]?.v ?? 0;
      if (v > LATEST_SCHEMA_VERSION) throw new SchemaTooNewError(v, LATEST_SCHEMA_VERSION);
      if (v < LATEST_SCHEMA_VERSION) throw new Error(`the PostgreSQL log's schema is at version ${v}, older than ${LATEST_SCHEMA_VERSION}: run pnpm migrate first`);
    } else {
      await migratePostgres(pool);
    }
  } catch (err) {
    await pool.end();
    throw err;
  }

  let closed = false;
  let pending: Pending[] = [];
  let writing = false;
  const wakers = new Set<() => void>();
  const wakeAll = () => {
    for (const w of wakers) w();
  };

  // --- appends -------------------------------------------------------------------------------

  type Outcome = { ok: AppendResult; wrote: boolean } | { conflict: Conflict } | { error: Error };

  async function appendOne(c: pg.PoolClient, head: { position: bigint; recordedAt: string | null }, p: Pending, clock: string): Promise<Outcome> {
    const first = p.events[0];
    if (first) {
      const found = await c.query<Row>('SELECT * FROM events WHERE event_id = ANY($1::text[])', [p.events.map((e) => e.id)]);
      if (found.rows.length > 0) {
        const byId = new Map(found.rows.map((r) => [r.event_id, r]));
        const firstRow = byId.get(first.id);
        if (!firstRow) {
          const other = found.rows[0]!;
          return { error: new Error(`event ${other.event_id} was already appended to stream ${other.stream}: refusing a partial duplicate`) };
        }
        const rows: Row[] = [];
        for (const e of p.events) {
          const r = byId.get(e.id);
          if (!r) return { error: new Error(`append to ${p.stream} repeats event ${first.id} but not ${e.id}: refusing a partial duplicate`) };
          rows.push(r);
        }
        if (rows.some((r) => r.stream !== p.stream)) return { error: new Error(`event ${firstRow.event_id} was already appended to stream ${firstRow.stream}, not ${p.stream}`) };
        const events = rows.map(storedEventOf);
        const last = events.at(-1)!;
        return { ok: { revision: last.revision, position: last.position, events, duplicate: true }, wrote: false };
      }
    }
    const sh = await c.query<{ revision: number; hash: string }>('SELECT revision, hash FROM streams WHERE stream = $1', [p.stream]);
    const current = sh.rows[0]?.revision ?? -1;
    if (p.expected !== 'any') {
      const want = p.expected === 'no_stream' ? -1 : p.expected;
      if (want !== current) return { conflict: new Conflict(p.stream, want, current) };
    }
    if (p.events.length === 0) {
      const last = current >= 0 ? await c.query<{ position: string }>('SELECT position FROM events WHERE stream = $1 AND revision = $2', [p.stream, current]) : null;
      return { ok: { revision: current, position: last?.rows[0]?.position ?? '0', events: [], duplicate: false }, wrote: false };
    }
    // recordedAt never goes backwards, so "as of an instant" is always a prefix of the log.
    const recordedAt = head.recordedAt && head.recordedAt > clock ? head.recordedAt : clock;
    let prevHash = sh.rows[0]?.hash ?? genesisHash(CURRENT_HASH_SCHEME, p.stream);
    let revision = current;
    let position = head.position;
    const stored: StoredEvent[] = [];
    for (const e of p.events) {
      revision++;
      position++;
      const metadata = { ...e.metadata, recordedAt, hashScheme: CURRENT_HASH_SCHEME };
      const hash = eventHash({ stream: p.stream, id: e.id, revision, prevHash, type: e.type, data: e.data, metadata });
      stored.push({ id: e.id, stream: p.stream, revision, position: String(position), type: e.type, data: e.data, metadata, prevHash, hash });
      prevHash = hash;
    }
    await insertRows(c, stored);
    await c.query(
      `INSERT INTO streams (stream, revision, hash, created_position) VALUES ($1, $2, $3, $4)
       ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, hash = excluded.hash`,
      [p.stream, revision, prevHash, stored[0]!.position],
    );
    head.position = position;
    head.recordedAt = recordedAt;
    return { ok: { revision, position: String(position), events: stored, duplicate: false }, wrote: true };
  }

  /** One transaction for a group of appends: lock the head, each append in a savepoint, move the head, notify, commit. */
  async function writeGroup(group: Pending[]): Promise<Outcome[]> {
    const c = await pool.connect();
    let broken = false;
    try {
      await c.query('BEGIN');
      try {
        await c.query('SET LOCAL synchronous_commit = on');
        const h = await c.query<{ position: string; recorded_at: string | null }>('SELECT position, recorded_at FROM log_head WHERE id FOR UPDATE');
        if (!h.rows[0]) throw new Error('the PostgreSQL log has no log_head row: its schema was changed outside the service');
        const head = { position: BigInt(h.rows[0].position), recordedAt: h.rows[0].recorded_at };
        const startPosition = head.position;
        const clock = now().toISOString();
        const outcomes: Outcome[] = [];
        for (const p of group) {
          await c.query('SAVEPOINT append');
          const saved = { ...head };
          try {
            const o = await appendOne(c, head, p, clock);
            if ('ok' in o) await c.query('RELEASE SAVEPOINT append');
            else {
              await c.query('ROLLBACK TO SAVEPOINT append');
              Object.assign(head, saved);
            }
            outcomes.push(o);
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code && RETRYABLE.has(code)) throw err;
            await c.query('ROLLBACK TO SAVEPOINT append');
            Object.assign(head, saved);
            outcomes.push({ error: err instanceof Error ? err : new Error(String(err)) });
          }
        }
        if (head.position !== startPosition) {
          await c.query('UPDATE log_head SET position = $1, recorded_at = $2 WHERE id', [String(head.position), head.recordedAt]);
          await c.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, String(head.position)]);
        }
        await c.query('COMMIT');
        return outcomes;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } catch (err) {
      broken ||= !(err as { code?: string }).code;
      throw err;
    } finally {
      c.release(broken);
    }
  }

  async function writeWithRetry(group: Pending[]): Promise<Outcome[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await writeGroup(group);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!code || !RETRYABLE.has(code) || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 5 * attempt));
      }
    }
  }

  function flush(): void {
    if (writing || pending.length === 0 || closed) return;
    const group = pending;
    pending = [];
    writing = true;
    writeWithRetry(group)
      .then(
        (outcomes) => {
          // Answered callers may start an import at once: this group is no longer in flight.
          writing = false;
          let wrote = false;
          outcomes.forEach((o, i) => {
            const p = group[i]!;
            if ('conflict' in o) p.reject(new ConcurrencyError(o.conflict.stream, o.conflict.expected, o.conflict.actual));
            else if ('error' in o) p.reject(o.error);
            else {
              if (o.wrote) wrote = true;
              p.resolve(o.ok);
            }
          });
          if (wrote) wakeAll();
        },
        (err: unknown) => {
          writing = false;
          for (const p of group) p.reject(err);
        },
      )
      .finally(() => {
        writing = false;
        flush();
      });
  }

  async function insertRows(c: pg.PoolClient, rows: StoredEvent[]): Promise<void> {
    await c.query(
      `INSERT INTO events (position, event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])`,
      [
        rows.map((r) => r.position), rows.map((r) => r.id), rows.map((r) => r.stream), rows.map((r) => r.revision), rows.map((r) => r.type),
        rows.map((r) => JSON.stringify(r.data)), rows.map((r) => JSON.stringify(r.metadata)), rows.map((r) => r.metadata.recordedAt),
        rows.map((r) => r.prevHash), rows.map((r) => r.hash),
      ],
    );
  }

  // --- import ----------------------------------------------------------------------------------

  let importing = false;
  async function importEvents(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): Promise<ImportSummary> {
    if (importing) throw new ConflictError('an import into this log is already running', 'import_running');
    if (pending.length > 0 || writing) throw new ConflictError('appends are in flight on this log: an archive is imported only into an idle, empty log', 'log_not_empty');
    importing = true;
    const c = await pool.connect();
    const heads = new Map<string, { revision: number; hash: string; scheme: HashScheme; created: string }>();
    let count = 0;
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL synchronous_commit = on');
      // Holding the head: appends from other processes wait until the import ends.
      await c.query('SELECT position FROM log_head WHERE id FOR UPDATE');
      const any = await c.query('SELECT 1 FROM events LIMIT 1');
      if (any.rows.length > 0) throw new ConflictError('the log already holds events: an archive is imported only into an empty log', 'log_not_empty');
      let lastPosition = 0n;
      let lastRecordedAt = '';
      let batch: StoredEvent[] = [];
      for await (const e of events) {
        const head = heads.get(e.stream);
        const revision = head ? head.revision + 1 : 0;
        const refuse = (reason: string) => new ValidationError(`import refused at ${e.stream} revision ${e.revision} (event ${e.id}): ${reason}`, [], 'import_refused');
        if (e.revision !== revision) throw refuse(`the stream's next revision is ${revision}`);
        const fault = chainFault(e, head ? { hash: head.hash, scheme: head.scheme } : null);
        if (fault) throw refuse(fault);
        if (!/^\d{1,19}$/.test(e.position)) throw refuse(`position ${e.position} is not a position PostgreSQL can keep`);
        const position = BigInt(e.position);
        if (position <= lastPosition || position > 2n ** 63n - 1n) throw refuse(`position ${e.position} is not after ${lastPosition}`);
        if (e.metadata.recordedAt < lastRecordedAt) throw refuse(`recordedAt ${e.metadata.recordedAt} is before the previous event's ${lastRecordedAt}`);
        batch.push({ ...e, revision });
        if (batch.length >= 1000) {
          await insertRows(c, batch);
          batch = [];
        }
        heads.set(e.stream, { revision, hash: e.hash, scheme: hashScheme(e.metadata)!, created: head?.created ?? e.position });
        lastPosition = position;
        lastRecordedAt = e.metadata.recordedAt;
        count++;
      }
      if (batch.length > 0) await insertRows(c, batch);
      const names = [...heads.keys()];
      if (names.length > 0) {
        await c.query(
          `INSERT INTO streams (stream, revision, hash, created_position)
           SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[])`,
          [names, names.map((n) => heads.get(n)!.revision), names.map((n) => heads.get(n)!.hash), names.map((n) => heads.get(n)!.created)],
        );
      }
      if (count > 0) {
        await c.query('UPDATE log_head SET position = $1, recorded_at = $2 WHERE id', [String(lastPosition), lastRecordedAt]);
        await c.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, String(lastPosition)]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
      importing = false;
    }
    if (count > 0) wakeAll();
    return { events: count, streams: heads.size };
  }

  // --- LISTEN ----------------------------------------------------------------------------------

  // One connection of its own (a pooled one would be handed to queries), opened at the first
  // subscription and reopened with backoff when it drops; subscribers poll meanwhile.
  let listener: pg.Client | null = null;
  let listenerUp = false;
  let listenerStarting = false;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let listenerFailures = 0;

  function startListener(): void {
    if (closed || listener || listenerStarting || wakers.size === 0) return;
    listenerStarting = true;
    const client = new pg.Client({ connectionString: options.connectionString });
    const lost = (err: unknown) => {
      if (listener !== client && !listenerStarting) return;
      listener = null;
      listenerUp = false;
      listenerStarting = false;
      client.removeAllListeners();
      client.on('error', () => {});
      void client.end().catch(() => {});
      if (closed) return;
      listenerFailures++;
      const delay = Math.min(5000, 100 * 2 ** Math.min(listenerFailures, 6));
      logInfo(`PostgreSQL event store: the LISTEN connection is down (${err instanceof Error ? err.message : String(err)}); subscribers poll every ${pollIntervalMs} ms, reconnecting in ${delay} ms`);
      reconnectTimer = setTimeout(() => {
        reconnectTimer = null;
        startListener();
      }, delay);
      reconnectTimer.unref();
      // Something may have been appended while no notification could arrive.
      wakeAll();
    };
    client.on('error', lost);
    client.on('end', () => lost(new Error('connection ended')));
    client.on('notification', () => wakeAll());
    client
      .connect()
      .then(() => client.query(`LISTEN ${NOTIFY_CHANNEL}`))
      .then(() => {
        listenerStarting = false;
        if (closed) {
          client.removeAllListeners();
          void client.end().catch(() => {});
          return;
        }
        listener = client;
        listenerUp = true;
        if (listenerFailures > 0) logInfo('PostgreSQL event store: the LISTEN connection is back; subscribers wake on notifications again');
        listenerFailures = 0;
        // Appends between the last read and LISTEN sent no notification this connection saw.
        wakeAll();
      })
      .catch(lost);
  }

  // --- the port --------------------------------------------------------------------------------

  const store: PostgresEventStore = {
    pool,
    importEvents,
    listening: () => listenerUp,
    append(stream, events, { expectedRevision }) {
      if (closed) return Promise.reject(new Error('the event store is closed'));
      if (importing) return Promise.reject(new ConflictError('the log is being restored from an archive; appends wait until the import ends', 'import_running'));
      return new Promise<AppendResult>((resolve, reject) => {
        pending.push({ stream, events, expected: expectedRevision, resolve, reject });
        if (pending.length === 1 && !writing) setImmediate(flush);
      });
    },
    async readStream(stream, opts: ReadStreamOptions = {}) {
      const params: unknown[] = [stream, opts.fromRevision ?? 0];
      const clauses = ['stream = $1', 'revision >= $2'];
      if (opts.toRevision !== undefined) {
        params.push(opts.toRevision);
        clauses.push(`revision <= $${params.length}`);
      }
      if (opts.recordedUpTo !== undefined) {
        // The hashed copy in the metadata, not the recorded_at column: what `asOf` keeps is what /integrity vouches for.
        params.push(opts.recordedUpTo);
        clauses.push(`(metadata::json ->> 'recordedAt') <= $${params.length} COLLATE "C"`);
      }
      let limit = '';
      if (opts.limit !== undefined) {
        params.push(opts.limit);
        limit = ` LIMIT $${params.length}`;
      }
      const { rows } = await pool.query<Row>(`SELECT * FROM events WHERE ${clauses.join(' AND ')} ORDER BY revision${limit}`, params);
      return rows.map(storedEventOf);
    },
    async streamRevision(stream) {
      const { rows } = await pool.query<{ revision: number }>('SELECT revision FROM streams WHERE stream = $1', [stream]);
      return rows[0]?.revision ?? -1;
    },
    async streamHead(stream): Promise<StreamHeadRow | null> {
      const { rows } = await pool.query<StreamHeadRow>('SELECT revision, hash FROM streams WHERE stream = $1', [stream]);
      return rows[0] ?? null;
    },
    async storageFault(stream) {
      const { rows } = await pool.query<{ revision: number; recorded_at: string; at: string | null }>(
        `SELECT revision, recorded_at, metadata::json ->> 'recordedAt' AS at FROM events
         WHERE stream = $1 AND recorded_at IS DISTINCT FROM (metadata::json ->> 'recordedAt') ORDER BY revision LIMIT 1`,
        [stream],
      );
      const m = rows[0];
      return m ? { revision: m.revision, reason: `the recorded_at column (${m.recorded_at}) of revision ${m.revision} is not the recordedAt its hash covers (${m.at})` } : null;
    },
    async lastRecordedAt() {
      const { rows } = await pool.query<{ at: string | null }>("SELECT metadata::json ->> 'recordedAt' AS at FROM events ORDER BY position DESC LIMIT 1");
      return rows[0]?.at ?? null;
    },
    async readAll({ after, limit }) {
      const { rows } = await pool.query<Row>('SELECT * FROM events WHERE position > $1 ORDER BY position LIMIT $2', [after ?? '0', limit]);
      return rows.map(storedEventOf);
    },
    async headPosition() {
      const { rows } = await pool.query<{ p: string | null }>('SELECT max(position) AS p FROM events');
      return rows[0]?.p ?? null;
    },
    async listStreams() {
      const { rows } = await pool.query<{ stream: string }>('SELECT stream FROM streams ORDER BY created_position');
      return rows.map((r) => r.stream);
    },
    subscribe(opts: SubscribeOptions): Subscription {
      return pollingSubscription(opts, {
        readAll: (o) => store.readAll(o), pollIntervalMs, logError, label: 'PostgreSQL subscription',
        onPoke: (poke) => {
          wakers.add(poke);
          startListener();
          return () => wakers.delete(poke);
        },
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      wakeAll();
      if (reconnectTimer) clearTimeout(reconnectTimer);
      const refused = pending;
      pending = [];
      for (const p of refused) p.reject(new Error('the event store was closed before this append was written'));
      // The group being written is finished and answered first.
      while (writing) await new Promise((r) => setTimeout(r, 5));
      const l = listener;
      listener = null;
      listenerUp = false;
      if (l) {
        l.removeAllListeners();
        l.on('error', () => {});
        await l.end().catch(() => {});
      }
      await pool.end();
    },
  };
  return store;
}
