// The service on a PostgreSQL log, as separate processes: EVENT_STORE_URL=postgres://... selects
// it, two api processes on two ports share the log (each follows it over LISTEN/NOTIFY), a
// SIGKILLed one restarts onto the same history, and a schema newer than the service knows stops
// the start with one line. Its own database per run (PG_URL server; PG_SKIP=1 skips).
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PG_SKIP, freshPostgresDatabase, type FreshDatabase } from '@cm/event-store/testing/postgres';
import { killAllServices, removeDataDir, runUntilExit, startService } from './support/service-process.js';

const dbs: FreshDatabase[] = [];
const dirs: string[] = [];
afterAll(async () => {
  await killAllServices();
  for (const d of dbs) await d.drop();
  dirs.forEach(removeDataDir);
});

const agreement = (id: string) => ({
  id,
  title: `Agreement ${id}`,
  kind: 'agreement',
  sector: 'health',
  parties: ['VEN', 'RUS'],
  signedAt: '2025-11-28',
  session: { name: 'CIAN XIX', date: '2025-11-28' },
  commitments: [{ id: `${id}-c1`, title: 'Vaccine plant', dueDate: '2099-06-30', responsible: { party: 'VEN', institution: 'Ministerio de Salud' } }],
});

async function until(cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(PG_SKIP)('the service on PostgreSQL', () => {
  it('two api processes share the log; a SIGKILLed one restarts onto the same history', async () => {
    const d = await freshPostgresDatabase();
    dbs.push(d);
    const env = { EVENT_STORE_URL: d.url, AUTH: 'off' };
    const a = await startService({ env });
    const b = await startService({ env });
    dirs.push(a.dataDir, b.dataDir);
    const created = await fetch(`${a.url}/v1/agreements`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(agreement('pg-1')) });
    expect(created.status).toBe(201);
    await until(async () => (await fetch(`${b.url}/v1/agreements/pg-1`)).status === 200);
    const viaB = await fetch(`${b.url}/v1/agreements`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(agreement('pg-2')) });
    expect(viaB.status).toBe(201);
    a.child.kill('SIGKILL');
    await a.exited;
    const again = await startService({ env, dataDir: a.dataDir });
    await until(async () => (await fetch(`${again.url}/v1/agreements/pg-2`)).status === 200);
    expect((await fetch(`${again.url}/v1/agreements/pg-1`)).status).toBe(200);
    const c = new pg.Client({ connectionString: d.url });
    await c.connect();
    const { rows } = await c.query<{ n: string; max: string }>('SELECT count(*) AS n, max(position) AS max FROM events');
    await c.end();
    expect(rows[0]!.n).toBe(rows[0]!.max);
  });

  it('refuses to start on a schema newer than it knows, in one line', async () => {
    const d = await freshPostgresDatabase();
    dbs.push(d);
    const c = new pg.Client({ connectionString: d.url });
    await c.connect();
    await c.query('CREATE TABLE schema_version (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
    await c.query("INSERT INTO schema_version (version, description) VALUES (7, 'later')");
    await c.end();
    const r = await runUntilExit({ EVENT_STORE_URL: d.url, AUTH: 'off', LOG_LEVEL: 'info' });
    expect(r.code).toBe(78);
    expect(r.stdout + r.stderr).toMatch(/schema is at version 7, newer than version 2/);
  });
});
