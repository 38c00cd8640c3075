import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it, expect } from 'vitest';
import { pino } from 'pino';
import { readStoreContract } from './contract/read-store-contract.js';
import { createSqliteEventStore } from '@cm/event-store';
import { createLedgerWriter } from './testing/ledger-writer.js';
import { writeMixedLedger } from './testing/mixed-ledger.js';
import { projectInto } from './testing/project-into.js';
import { createMemoryReadStore } from './read-store.js';
import { createRedisReadStore, dropGeneration, switchGeneration } from './redis-read-store.js';
import { LeaseLostError, ReadModelsDamagedError, type ReadStore } from './read-store.js';
import { createProjector, waitForCheckpoint } from './projector.js';
import { createDecidedLedger, type DecidedLedger } from './testing/decided-ledger.js';
import { agreementFilter, commitmentFilter, reviewFilter } from './queries.js';

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

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('a commit the generation cannot vouch for', () => {
  let ns: string;
  let store: ReturnType<typeof createRedisReadStore>;
  let ledger: DecidedLedger;
  /** Where the store stands before the batch under test. */
  let signed: string;

  beforeEach(async () => {
    ns = `damage-${randomUUID().slice(0, 8)}`;
    store = createRedisReadStore({ url, namespace: ns });
    ledger = createDecidedLedger();
    await ledger.sign('air-services', {
      title: 'Air Services Agreement', sector: 'air_transport', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
      commitments: [{ id: 'route', dueDate: '2026-09-30' }, { id: 'survey', dueDate: '2026-05-31' }],
    });
    await ledger.sign('energy-memorandum', {
      title: 'Memorandum on Energy', sector: 'energy', parties: ['VEN', 'CUB'], signedAt: '2025-06-15',
      commitments: [{ id: 'pipeline', dueDate: '2026-01-31' }],
    });
    signed = (await ledger.commitTo(store))!;
    // The next batch: the first progress report moves the agreement to in_implementation.
    await ledger.progress('air-services', 'route', 10);
  });

  afterEach(async () => {
    await dropGeneration(store.redis, ns, 1);
    await store.close();
  });

  /** Every key of the generation with its content, but the damage marker. */
  async function contents(): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const key of (await store.redis.keys(`${ns}:g1:*`)).sort()) {
      if (key.endsWith(':damaged')) continue;
      const type = await store.redis.type(key);
      if (type === 'string') out[key] = await store.redis.get(key);
      else if (type === 'zset') out[key] = await store.redis.zrange(key, '0', '-1', 'WITHSCORES');
      else if (type === 'hash') out[key] = await store.redis.hgetall(key);
      else if (type === 'set') out[key] = (await store.redis.smembers(key)).sort();
      else out[key] = await store.redis.lrange(key, 0, -1);
    }
    return out;
  }

  async function expectRefusedForGood(): Promise<void> {
    const err = await caught(store.commit({ agreements: new Map(), reviews: new Map() }, '1000', { from: await store.checkpoint() }));
    expect(err).toBeInstanceOf(ReadModelsDamagedError);
    expect((err as Error).message).toMatch(/run pnpm rebuild-read-models/);
  }

  it('refuses a batch once the checkpoint was evicted, writes nothing of it, and refuses a replay from the start too', async () => {
    await store.redis.del(`${ns}:g1:checkpoint`);
    const before = await contents();

    const err = await caught(ledger.commitTo(store));

    expect(err).toBeInstanceOf(ReadModelsDamagedError);
    expect((err as Error).message).toMatch(/checkpoint is missing.*run pnpm rebuild-read-models/);
    expect(await contents()).toEqual(before);
    expect(await store.checkpoint()).toBeNull();
    // A projector restarting from the missing checkpoint would replay the log over what is left.
    const replay = await caught(store.commit({ agreements: new Map(ledger.documents.agreements), reviews: new Map() }, ledger.head()!, { from: null }));
    expect(replay).toBeInstanceOf(ReadModelsDamagedError);
    expect(await contents()).toEqual(before);
  });

  it('refuses, without writing anything, a batch that would meet a key of another type, and every commit after it', async () => {
    await store.redis.lpush(`${ns}:g1:c:status:in_progress`, 'not an index');
    const before = await contents();

    const err = await caught(ledger.commitTo(store));

    expect(err).toBeInstanceOf(ReadModelsDamagedError);
    expect((err as Error).message).toContain(`${ns}:g1:c:status:in_progress holds a list`);
    expect(await contents()).toEqual(before);
    expect(await store.checkpoint()).toBe(signed);
    await expectRefusedForGood();
  });

  it('leaves the checkpoint where it was when a write fails half-way, and refuses every commit after it', async () => {
    // HINCRBY on this field fails after the index entries of the batch were already written.
    await store.redis.hset(`${ns}:g1:a:count`, 'st:in_implementation', 'not a number');
    const document = await store.redis.get(`${ns}:g1:a:air-services`);

    const err = await caught(ledger.commitTo(store));

    expect(err).toBeInstanceOf(ReadModelsDamagedError);
    expect((err as Error).message).toMatch(/failed half-way: hincrby .*a:count/);
    expect(await store.checkpoint()).toBe(signed);
    expect(await store.redis.get(`${ns}:g1:a:air-services`)).toBe(document);
    expect(await store.redis.get(`${ns}:g1:damaged`)).toMatch(/failed half-way/);
    await expectRefusedForGood();
  });
});

it('makes a projector whose batch no longer starts at the stored checkpoint resubscribe from the stored one, losing nothing', async () => {
  const es = createSqliteEventStore({ path: join(mkdtempSync(join(tmpdir(), 'x-')), 'e.sqlite') });
  await writeMixedLedger(createLedgerWriter(es), { agreements: 8, reviews: 2, targetEvents: 120, seed: 11 });
  const ns = `mismatch-${randomUUID().slice(0, 8)}`;
  const store = createRedisReadStore({ url, namespace: ns });
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
  // Another writer commits the first events of the projector's second batch between the
  // projector's reads and its commit, as a writer that thinks it holds the lease could.
  let batches = 0;
  const interleaved: ReadStore = {
    ...store,
    async commit(changes, checkpoint, o) {
      if (++batches === 2) await projectInto(store, await es.readAll({ after: o.from, limit: 7 }));
      return store.commit(changes, checkpoint, o);
    },
  };
  const projector = createProjector({ eventStore: es, readStore: interleaved, logger, batchSize: 25 });
  try {
    await projector.start();
    const head = (await es.headPosition())!;
    expect(await waitForCheckpoint(store, head, 5000)).toBe(true);

    const refused = warnings.map((l) => JSON.parse(l) as { msg: string; from: string; stored: string }).find((l) => l.msg.includes('not at the checkpoint it starts from'));
    expect(refused).toMatchObject({ from: '25', stored: '32' });
    const replay = createMemoryReadStore();
    await projectInto(replay, await es.readAll({ after: null, limit: 100000 }));
    // Each document's position is its stream's last event: unique, so an order to compare in.
    const inOrder = (docs: { position: string }[]) => [...docs].sort((a, b) => Number(a.position) - Number(b.position));
    expect(inOrder(await store.allAgreements())).toEqual(inOrder(await replay.allAgreements()));
    expect(inOrder(await store.allReviews())).toEqual(inOrder(await replay.allReviews()));
    expect(await store.dashboard('2026-06-01T00:00:00.000Z')).toEqual(await replay.dashboard('2026-06-01T00:00:00.000Z'));
  } finally {
    await projector.stop();
    await dropGeneration(store.redis, ns, 1);
    await store.close();
    await es.close();
  }
});

describe('dropping and switching generations under a fence', () => {
  let ns: string;
  let store: ReturnType<typeof createRedisReadStore>;
  let lock: string;

  beforeEach(async () => {
    ns = `fence-${randomUUID().slice(0, 8)}`;
    lock = `${ns}:rebuild:lock`;
    store = createRedisReadStore({ url, namespace: ns, generation: 2 });
    const ledger = createDecidedLedger();
    await ledger.sign('air-services', {
      title: 'Air Services Agreement', sector: 'air_transport', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
      commitments: [{ id: 'route', dueDate: '2026-09-30' }],
    });
    await ledger.commitTo(store);
    // The lock of the rebuild that now works on generation 2: not the caller's.
    await store.redis.set(lock, `${ns}-test-holder`, 'PX', 60_000);
  });

  afterEach(async () => {
    await dropGeneration(store.redis, ns, 2);
    await store.redis.del(lock, `${ns}:current`);
    await store.close();
  });

  const keys = async () => (await store.redis.keys(`${ns}:g2:*`)).sort();

  it('drops nothing of a generation under a fence whose key holds another token, and everything under the token it holds', async () => {
    const before = await keys();
    expect(before.length).toBeGreaterThan(3);

    const refused = await caught(dropGeneration(store.redis, ns, 2, { fence: { key: lock, token: 'a-rebuild-that-lost-it' } }));
    expect(refused).toBeInstanceOf(LeaseLostError);
    expect((refused as Error).message).toContain(lock);
    expect(await keys()).toEqual(before);
    expect(await store.checkpoint()).not.toBeNull();

    // A lock that expired and was taken by nobody fences as well.
    await store.redis.del(lock);
    expect(await caught(dropGeneration(store.redis, ns, 2, { fence: { key: lock, token: 'a-rebuild-that-lost-it' } }))).toBeInstanceOf(LeaseLostError);
    expect(await keys()).toEqual(before);

    await store.redis.set(lock, `${ns}-test-holder`, 'PX', 60_000);
    expect(await dropGeneration(store.redis, ns, 2, { fence: { key: lock, token: `${ns}-test-holder` } })).toBe(before.length);
    expect(await keys()).toEqual([]);
  });

  it('switches readers under a fence only while its key holds the token', async () => {
    const refused = await caught(switchGeneration(store.redis, ns, 2, { fence: { key: lock, token: 'a-rebuild-that-lost-it' } }));
    expect(refused).toBeInstanceOf(LeaseLostError);
    expect(await store.redis.get(`${ns}:current`)).toBeNull();

    await switchGeneration(store.redis, ns, 2, { fence: { key: lock, token: `${ns}-test-holder` } });
    expect(await store.redis.get(`${ns}:current`)).toBe('2');
  });
});
