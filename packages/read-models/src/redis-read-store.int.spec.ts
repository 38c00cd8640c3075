import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { it, expect } from 'vitest';
import { readStoreContract } from './contract/read-store-contract';
import { createSqliteEventStore } from '@cm/event-store';
import { createLedgerWriter } from './testing/ledger-writer';
import { writeMixedLedger } from './testing/mixed-ledger';
import { projectInto } from './testing/project-into';
import { createMemoryReadStore } from './read-store';
import { createRedisReadStore, dropGeneration } from './redis-read-store';
import { agreementFilter, commitmentFilter, reviewFilter } from './queries';

it('answers every list and the dashboard exactly as the reference scan does, across batches and instants', async () => {
  const es = createSqliteEventStore({ path: join(mkdtempSync(join(tmpdir(), 'x-')), 'e.sqlite') });
  const ledger = await writeMixedLedger(createLedgerWriter(es), { agreements: 30, reviews: 5, targetEvents: 400, seed: 7 });
  const events = await es.readAll({ after: null, limit: 100000 });
  const mem = createMemoryReadStore();
  const ns = `scratch${Date.now()}`;
  const red = createRedisReadStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', namespace: ns });
  for (let i = 0; i < events.length; i += 37) {
    const b = events.slice(i, i + 37);
    await projectInto(mem, b);
    await projectInto(red, b);
  }
  for (const now of ['2026-01-01T00:00:00.000Z', ledger.end, '2030-01-01T00:00:00.000Z']) {
    for (const f of [{}, { status: 'delayed' }, { status: 'signed' }, { status: 'in_implementation' }, { sector: 'health', limit: '3' }, { party: 'VEN', status: 'delayed' }, { q: 'a' }]) {
      expect(await red.listAgreements(agreementFilter.parse(f), now), JSON.stringify(f)).toEqual(await mem.listAgreements(agreementFilter.parse(f), now));
    }
    for (const f of [{}, { overdue: 'true' }, { overdue: 'false', limit: '7' }, { status: 'pending' }, { dueAfter: '2026-03-01', dueBefore: '2026-09-01' }, { institution: 'min' }]) {
      const a = await red.listCommitments(commitmentFilter.parse(f), now);
      const b = await mem.listCommitments(commitmentFilter.parse(f), now);
      expect(a, JSON.stringify(f)).toEqual(b);
      if (b.nextCursor) expect(await red.listCommitments(commitmentFilter.parse({ ...f, cursor: b.nextCursor }), now)).toEqual(await mem.listCommitments(commitmentFilter.parse({ ...f, cursor: b.nextCursor }), now));
    }
    expect(await red.dashboard(now)).toEqual(await mem.dashboard(now));
    expect(await red.listReviews(reviewFilter.parse({}))).toEqual(await mem.listReviews(reviewFilter.parse({})));
  }
  expect(await red.checkpoint()).toBe(await mem.checkpoint());
  await dropGeneration(red.redis, ns, 1);
  await red.close();
  await es.close();
}, 60000);

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
readStoreContract('redis', async () => {
  const ns = `contract-${randomUUID().slice(0, 8)}`;
  const store = createRedisReadStore({ url, namespace: ns });
  return {
    store,
    async cleanup() {
      await dropGeneration(store.redis, ns, 1);
      await store.redis.del(`${ns}:current`);
      await store.close();
    },
  };
});
