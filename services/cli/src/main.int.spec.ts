// The rebuild command as an operator runs it: a real process, a real SQLite log in a temp
// folder and the real Redis of this machine, under a namespace of its own.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createSqliteEventStore } from '@cm/event-store';
import { dropGeneration } from '@cm/read-models';
import { runCli } from './testing/run-cli.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ns = `cli-test-${randomUUID().slice(0, 8)}`;
let dir: string;
let redis: Redis;

const cli = (args: string[], env: Record<string, string>) => runCli(args, env);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-cli-'));
  const log = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
  const meta = { actor: 'test', occurredAt: '2026-01-05T09:00:00.000Z', correlationId: 'c' };
  for (const id of ['health', 'air']) {
    await log.append(`agreement-${id}`, [
      { id: randomUUID(), type: 'AgreementSigned', data: { agreementId: id, title: `Agreement on ${id}`, kind: 'agreement', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28' }, metadata: meta },
      { id: randomUUID(), type: 'CommitmentAdded', data: { agreementId: id, commitmentId: 'c-1', title: 'Deliver', dueDate: '2026-06-30', responsible: { party: 'VEN', institution: 'Ministry of Health' } }, metadata: meta },
    ], { expectedRevision: 'no_stream' });
  }
  await log.close();
  redis = new Redis(REDIS_URL);
});

afterAll(async () => {
  for (let g = 1; g <= 3; g++) await dropGeneration(redis, ns, g);
  await redis.del(`${ns}:current`);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

it('refuses with one line in embedded mode, where there is nothing to rebuild', () => {
  const r = cli(['rebuild'], { DATA_DIR: dir });
  expect(r.code).toBe(78);
  expect(r.stderr).toBe('in embedded mode read models are rebuilt at every start; rebuild needs REDIS_URL\n');
});

it('rebuilds and switches; --check then exits 0 on healthy read models and 1 naming a document corrupted in Redis', async () => {
  const env = { DATA_DIR: dir, REDIS_URL, REDIS_NAMESPACE: ns };
  const rebuilt = cli(['rebuild'], env);
  expect(rebuilt.stderr).toBe('');
  expect(rebuilt.code).toBe(0);
  expect(rebuilt.stdout).toContain('readers now use generation 2');
  expect(await redis.get(`${ns}:current`)).toBe('2');

  const clean = cli(['rebuild', '--check'], env);
  expect(clean.code).toBe(0);
  expect(clean.stdout).toContain('no differences');

  const key = `${ns}:g2:a:air`;
  const doc = JSON.parse((await redis.get(key))!) as { agreement: { title: string } };
  doc.agreement.title = 'Edited in Redis';
  await redis.set(key, JSON.stringify(doc));
  const checked = cli(['rebuild', '--check'], env);
  expect(checked.code).toBe(1);
  expect(checked.stdout).toContain('  agreement air: agreement.title: live "Edited in Redis", rebuilt "Agreement on air"');
  expect(await redis.get(`${ns}:current`)).toBe('2');
}, 60_000);
