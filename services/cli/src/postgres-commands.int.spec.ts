// The operator's commands against a PostgreSQL log: `pnpm migrate`, and moving a SQLite log's
// history to a server with export-log / import-log, verified by verify-bundle. Each run has its
// own database (PG_URL server; PG_SKIP=1 skips, saying why).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION, createSqliteEventStore, type NewEvent } from '@cm/event-store';
import { PG_SKIP, freshPostgresDatabase, type FreshDatabase } from '@cm/event-store/testing/postgres';
import { runCli } from './testing/run-cli.js';

const ev = (type: string, data: unknown = {}): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { actor: 'cli-spec', occurredAt: '2025-11-28T10:00:00.000Z', correlationId: randomUUID() },
});

describe.skipIf(PG_SKIP)('CLI on a PostgreSQL log', () => {
  const dbs: FreshDatabase[] = [];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cm-cli-pg-'));
  });
  afterAll(async () => {
    for (const d of dbs) await d.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const fresh = async () => {
    const d = await freshPostgresDatabase();
    dbs.push(d);
    return d;
  };

  it('pnpm migrate creates the schema once, says so, and refuses a schema newer than it knows', async () => {
    const d = await fresh();
    const first = runCli(['migrate'], { EVENT_STORE_URL: d.url });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`at schema version ${LATEST_SCHEMA_VERSION} \\(applied 1, 2; was 0\\)`));
    const again = runCli(['migrate'], { EVENT_STORE_URL: d.url });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already at schema version/);
    const c = new pg.Client({ connectionString: d.url });
    await c.connect();
    await c.query("INSERT INTO schema_version (version, description) VALUES (999, 'later')");
    await c.end();
    const newer = runCli(['migrate'], { EVENT_STORE_URL: d.url });
    expect(newer.code).toBe(78);
    expect(newer.stderr.trim().split('\n')).toHaveLength(1);
    expect(newer.stderr).toMatch(new RegExp(`schema is at version 999, newer than version ${LATEST_SCHEMA_VERSION} .*upgrade the service`));
    const exp = runCli(['export', '--out', join(dir, 'never.ndjson')], { EVENT_STORE_URL: d.url });
    expect(exp.code).toBe(78);
  });

  it('migrate on a SQLite configuration says it applies to PostgreSQL only', () => {
    const r = runCli(['migrate'], { DATA_DIR: dir });
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/set EVENT_STORE_URL=postgres:/);
  });

  it('moves a SQLite log to PostgreSQL: import-log keeps every event, and the export from the server verifies and equals the original', async () => {
    const dataDir = join(dir, 'data');
    const sqlite = createSqliteEventStore({ path: join(dataDir, 'events.sqlite') });
    await sqlite.append('agreement-1', [ev('AgreementRegistered', { n: 1 }), ev('CommitmentAdded', { n: 2 })], { expectedRevision: 'no_stream' });
    await sqlite.append('review-1', [ev('ReviewScheduled', { n: 3 })], { expectedRevision: 'no_stream' });
    await sqlite.append('agreement-1', [ev('CommitmentFulfilled', { n: 4 })], { expectedRevision: 1 });
    await sqlite.close();
    const fromSqlite = join(dir, 'sqlite.ndjson');
    expect(runCli(['export', '--out', fromSqlite], { DATA_DIR: dataDir }).code).toBe(0);

    const d = await fresh();
    const imported = runCli(['import', fromSqlite], { EVENT_STORE_URL: d.url });
    expect(imported.stderr).not.toMatch(/failed|refusing/);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/imported 4 events of 2 streams/);
    const twice = runCli(['import', fromSqlite], { EVENT_STORE_URL: d.url });
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/already holds events/);

    const fromPg = join(dir, 'pg.ndjson');
    expect(runCli(['export', '--out', fromPg], { EVENT_STORE_URL: d.url }).code).toBe(0);
    expect(runCli(['verify', fromPg]).code).toBe(0);
    const body = (f: string) => readFileSync(f, 'utf8').trim().split('\n').slice(1);
    expect(body(fromPg)).toEqual(body(fromSqlite));
  });
});
