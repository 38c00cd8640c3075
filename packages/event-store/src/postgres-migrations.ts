// The PostgreSQL log's schema, as numbered migrations. Each runs once, in order, in one
// transaction with its row in `schema_version`; a start (or `pnpm migrate`) applies the ones the
// database lacks. A database whose schema is newer than this code knows is refused: an older
// service would write events a newer one no longer reads the same way.
import pg from 'pg';

export type Migration = { version: number; description: string; sql: string };

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'events, streams and the log head',
    sql: `
CREATE TABLE events (
  position    bigint PRIMARY KEY,
  event_id    text NOT NULL UNIQUE,
  stream      text NOT NULL,
  revision    integer NOT NULL,
  type        text NOT NULL,
  -- JSON text exactly as written (not jsonb, which would reorder keys and drop duplicates).
  data        text NOT NULL,
  metadata    text NOT NULL,
  -- A copy of metadata.recordedAt (which the hash covers), for the index.
  recorded_at text NOT NULL,
  prev_hash   text NOT NULL,
  hash        text NOT NULL,
  UNIQUE (stream, revision)
);
CREATE INDEX events_stream_recorded ON events (stream, recorded_at);
CREATE TABLE streams (
  stream           text PRIMARY KEY,
  revision         integer NOT NULL,
  hash             text NOT NULL,
  created_position bigint NOT NULL
);
CREATE INDEX streams_created ON streams (created_position);
-- One row: the last position and recordedAt. Every append locks it first, so appends are
-- serialised and positions are given, and made visible, in commit order.
CREATE TABLE log_head (
  id          boolean PRIMARY KEY DEFAULT true CHECK (id),
  position    bigint NOT NULL,
  recorded_at text
);
INSERT INTO log_head (id, position, recorded_at) VALUES (true, 0, NULL);
`,
  },
  {
    version: 2,
    description: 'evidence blobs, content-addressed',
    sql: `
-- Evidence files by SHA-256 of their bytes; stored once per content, never updated.
CREATE TABLE blobs (
  sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size       bigint NOT NULL,
  bytes      bytea NOT NULL,
  stored_at  timestamptz NOT NULL DEFAULT now()
);
`,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)!.version;

/** Held (transaction-level) while migrations run, so two processes starting at once do not both apply them. */
const MIGRATION_LOCK = 0x636d_6d69; // "cmmi"

export class SchemaTooNewError extends Error {
  constructor(readonly found: number, readonly known: number) {
    super(`the PostgreSQL log's schema is at version ${found}, newer than version ${known} that this version of the service knows: upgrade the service (or point EVENT_STORE_URL at the right database)`);
    this.name = 'SchemaTooNewError';
  }
}

export type MigrationReport = { from: number; to: number; applied: number[] };

/** Applies the missing migrations; throws SchemaTooNewError when the database is ahead of this code. */
export async function migratePostgres(target: pg.Pool | pg.Client | string, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationReport> {
  const ownClient = typeof target === 'string' ? new pg.Client({ connectionString: target }) : null;
  if (ownClient) await ownClient.connect();
  const client: pg.PoolClient | pg.Client = ownClient ?? (target instanceof pg.Pool ? await target.connect() : (target as pg.Client));
  const known = migrations.at(-1)?.version ?? 0;
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_version (
        version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_version');
      const from = rows[0]?.v ?? 0;
      if (from > known) throw new SchemaTooNewError(from, known);
      const applied: number[] = [];
      for (const m of migrations) {
        if (m.version <= from) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO schema_version (version, description) VALUES ($1, $2)', [m.version, m.description]);
        applied.push(m.version);
      }
      await client.query('COMMIT');
      return { from, to: Math.max(from, known), applied };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  } finally {
    if (ownClient) await ownClient.end();
    else if (target instanceof pg.Pool) (client as pg.PoolClient).release();
  }
}
