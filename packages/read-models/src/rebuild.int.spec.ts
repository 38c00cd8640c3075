// The rebuild against the real Redis of this machine and real SQLite logs in a temp folder:
// rebuilt equals live, readers never see an empty or half-built generation, a live projector
// loses nothing across the switch, --check finds a corrupted document without switching, and
// progress is reported as it goes. Each test works under a namespace of its own.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { createSqliteEventStore, type EventStore, type SqliteEventStore, type StoredEvent } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import type { AgreementDoc, ReviewDoc } from './documents.js';
import { createProjector, waitForCheckpoint } from './projector.js';
import { agreementFilter, commitmentFilter, reviewFilter, type ListQueries } from './queries.js';
import { createMemoryReadStore, type ReadStore } from './read-store.js';
import { RebuildInProgressError, RebuildLockLostError, rebuildReadModels, type RebuildProgress } from './rebuild.js';
import { createRedisReadStore, dropGeneration } from './redis-read-store.js';
import { createLedgerWriter } from './testing/ledger-writer.js';
import { writeMixedLedger, type MixedLedger } from './testing/mixed-ledger.js';
import { projectInto } from './testing/project-into.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ level: 'silent' });

let dir: string;
let shared: SqliteEventStore;
let ledger: MixedLedger;
let log: StoredEvent[];
let admin: Redis;
/** The whole shared log projected once, the way the projector does; tests copy it under their own namespace. */
let liveTemplate: string;
const namespaces: string[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-rebuild-'));
  shared = createSqliteEventStore({ path: join(dir, 'shared.sqlite') });
  // A fixture, not a ledger: no fsync per append (the test log is written once, then only read).
  shared.db.pragma('synchronous = OFF');
  ledger = await writeMixedLedger(createLedgerWriter(shared), { agreements: 120, reviews: 12, targetEvents: 3000, seed: 19 });
  log = await shared.readAll({ after: null, limit: 1_000_000 });
  admin = new Redis(REDIS_URL);
  liveTemplate = namespace();
  const store = createRedisReadStore({ url: REDIS_URL, namespace: liveTemplate, generation: 1 });
  await projectLive(store, log);
  await store.close();
});

afterAll(async () => {
  await cleanNamespaces();
  await shared.close();
  await admin.quit();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await cleanNamespaces(liveTemplate);
});

async function cleanNamespaces(keep?: string): Promise<void> {
  for (const ns of namespaces.filter((n) => n !== keep)) {
    for (let g = 1; g <= 5; g++) await dropGeneration(admin, ns, g);
    await admin.del(`${ns}:current`, `${ns}:rebuild:lock`);
  }
  namespaces.splice(0, namespaces.length, ...(keep ? [keep] : []));
}

function namespace(): string {
  const ns = `rebuild-test-${randomUUID().slice(0, 8)}`;
  namespaces.push(ns);
  return ns;
}

/** A namespace whose live generation 1 holds the whole shared log, as a live projector left it. */
async function liveNamespace(): Promise<string> {
  const ns = namespace();
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${liveTemplate}:g1:*`, 'COUNT', 1000);
    cursor = next;
    const copy = admin.pipeline();
    for (const key of keys) copy.copy(key, `${ns}${key.slice(liveTemplate.length)}`);
    await copy.exec();
  } while (cursor !== '0');
  return ns;
}

/** A Redis store following `<ns>:current`, as every api process reads. */
function followingCurrent(ns: string) {
  const store = createRedisReadStore({ url: REDIS_URL, namespace: ns });
  closers.push(() => store.close());
  return store;
}

/** The live generation, written the way the projector does: a commit per batch of its default size or less. */
async function projectLive(store: ReadStore, events: readonly StoredEvent[], batch = 250): Promise<void> {
  for (let i = 0; i < events.length; i += batch) await projectInto(store, events.slice(i, i + batch));
}

const sortBy = <T>(xs: T[], key: (x: T) => string) => [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
const documents = async (s: ReadStore) => ({
  agreements: sortBy<AgreementDoc>(await s.allAgreements(), (d) => d.agreement.id),
  reviews: sortBy<ReviewDoc>(await s.allReviews(), (d) => d.review.id),
});

/** Every list the API serves, with a second page where there is one, and the dashboard, at several instants. */
async function answers(q: ListQueries, instants: string[]) {
  const out: Record<string, unknown> = {};
  for (const now of instants) {
    for (const f of [{}, { status: 'delayed' }, { status: 'signed' }, { status: 'in_implementation' }, { status: 'implemented' }, { status: 'terminated' }, { sector: 'health', limit: '3' }, { party: 'VEN', status: 'delayed' }, { session: 'CIAN XIX' }, { q: 'cooperacion' }]) {
      const page = await q.listAgreements(agreementFilter.parse(f), now);
      out[`agreements ${now} ${JSON.stringify(f)}`] = page;
      if (page.nextCursor) out[`agreements ${now} ${JSON.stringify(f)} p2`] = await q.listAgreements(agreementFilter.parse({ ...f, cursor: page.nextCursor }), now);
    }
    for (const f of [{}, { overdue: 'true' }, { overdue: 'false', limit: '7' }, { status: 'pending' }, { status: 'cancelled' }, { dueAfter: '2026-03-01', dueBefore: '2026-09-01' }, { institution: 'ministerio' }, { agreementId: 'agr-07' }, { party: 'RUS', sector: 'energy' }]) {
      const page = await q.listCommitments(commitmentFilter.parse(f), now);
      out[`commitments ${now} ${JSON.stringify(f)}`] = page;
      if (page.nextCursor) out[`commitments ${now} ${JSON.stringify(f)} p2`] = await q.listCommitments(commitmentFilter.parse({ ...f, cursor: page.nextCursor }), now);
    }
    out[`dashboard ${now}`] = await q.dashboard(now);
  }
  for (const f of [{}, { status: 'scheduled' }, { status: 'held' }, { agreementId: 'agr-03' }, { from: '2026-07-01T00:00:00.000Z' }]) {
    out[`reviews ${JSON.stringify(f)}`] = await q.listReviews(reviewFilter.parse(f));
  }
  return out;
}

async function keysOf(ns: string, generation: number): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${ns}:g${generation}:*`, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

describe('rebuildReadModels', () => {
  it('rebuilds a generation whose documents, lists and dashboards equal the live projection, switches to it and drops the old one', async () => {
    const ns = await liveNamespace();
    const live = followingCurrent(ns);
    const instants = ['2026-01-01T00:00:00.000Z', ledger.end, '2030-01-01T00:00:00.000Z'];
    const before = { docs: await documents(live), answers: await answers(live, instants), checkpoint: await live.checkpoint() };
    expect(before.docs.agreements).toHaveLength(122);

    const summary = await rebuildReadModels({ eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 1000, dropDelayMs: 0 });

    expect(summary).toMatchObject({ events: log.length, generation: 2, previousGeneration: 1, switched: true, checkpoint: log.at(-1)!.position, differences: [] });
    expect(summary.eventsPerSecond).toBeGreaterThan(0);
    expect(await live.generation()).toBe(2);
    const after = { docs: await documents(live), answers: await answers(live, instants), checkpoint: await live.checkpoint() };
    expect(after.docs).toEqual(before.docs);
    expect(after.answers).toEqual(before.answers);
    expect(after.checkpoint).toBe(before.checkpoint);
    // The reference: a plain replay of the log gives the same documents.
    const replay = createMemoryReadStore();
    await projectInto(replay, log);
    expect(after.docs).toEqual(await documents(replay));
    expect(summary.droppedKeys).toBeGreaterThan(120);
    expect(await keysOf(ns, 1)).toBe(0);
  });

  it('switches readers atomically: they see the old generation until the switch and the new one after, never an empty one', async () => {
    const ns = namespace();
    // The live generation stops where agreement 60 was signed, so each generation answers its own totals.
    const cut = log.findIndex((e) => e.stream === 'agreement-agr-60');
    await projectLive(followingCurrent(ns), log.slice(0, cut));
    const reader = followingCurrent(ns);
    const oldCheckpoint = log[cut - 1]!.position;
    const newCheckpoint = log.at(-1)!.position;

    type Seen = { value: number | string | null; afterSwitchStarted: boolean; afterReturn: boolean };
    const seen: { total: Seen[]; checkpoint: Seen[] } = { total: [], checkpoint: [] };
    let switchStarted = false;
    let returned = false;
    let reading = true;
    const note = (kind: keyof typeof seen, value: Seen['value']) => seen[kind].push({ value, afterSwitchStarted: switchStarted, afterReturn: returned });
    // Each read resolves the generation on its own, so each is checked on its own.
    const readerLoop = (async () => {
      while (reading) {
        note('total', (await reader.dashboard('2026-06-01T00:00:00.000Z')).agreements.total);
        note('checkpoint', await reader.checkpoint());
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    const summary = await rebuildReadModels({
      eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 1000, dropDelayMs: 200,
      onProgress: (p) => {
        if (p.phase === 'switching') switchStarted = true;
      },
    });
    returned = true;
    await new Promise((r) => setTimeout(r, 50));
    reading = false;
    await readerLoop;

    expect(summary.switched).toBe(true);
    for (const [kind, oldValue, newValue] of [['total', 60, 122], ['checkpoint', oldCheckpoint, newCheckpoint]] as const) {
      const values = seen[kind].map((s) => s.value);
      expect(new Set(values), kind).toEqual(new Set([oldValue, newValue]));
      // Until the switch began, only the old generation; once the new one shows, never the old again.
      expect(seen[kind].filter((s) => !s.afterSwitchStarted).every((s) => s.value === oldValue), kind).toBe(true);
      expect(values.slice(values.indexOf(newValue)).every((v) => v === newValue), kind).toBe(true);
      expect(seen[kind].filter((s) => s.afterReturn).every((s) => s.value === newValue), kind).toBe(true);
      expect(seen[kind].filter((s) => s.afterReturn).length, kind).toBeGreaterThan(0);
      expect(seen[kind].filter((s) => !s.afterSwitchStarted).length, kind).toBeGreaterThan(5);
    }
  });

  /**
   * A log of its own with a live projector on a store following `current`, and a client that keeps
   * sending commands (new agreements, progress on them, review moves that touch agreements).
   */
  async function liveService(ns: string, o: { wrap?: (store: ReturnType<typeof followingCurrent>) => ReadStore; logger?: Logger } = {}) {
    const own = createSqliteEventStore({ path: join(dir, `${ns}.sqlite`), pollIntervalMs: 10 });
    own.db.pragma('synchronous = OFF');
    closers.push(() => own.close());
    const writer = createLedgerWriter(own);
    const written = await writeMixedLedger(writer, { agreements: 30, reviews: 4, targetEvents: 600, seed: 23 });
    const liveStore = followingCurrent(ns);
    const projector = createProjector({ eventStore: own, readStore: o.wrap ? o.wrap(liveStore) : liveStore, logger: o.logger ?? logger, batchSize: 50 });
    closers.push(() => projector.stop());
    await projector.start();
    expect(await waitForCheckpoint(liveStore, written.last.position, 5000)).toBe(true);

    let n = 0;
    const send = async (): Promise<void> => {
      const i = n++;
      if (i % 4 === 0) {
        await writer.agreement(`live-${i}`, {
          type: 'SignAgreement', agreementId: `live-${i}`, title: `Live agreement ${i}`, kind: 'agreement', sector: 'science', parties: ['VEN', 'CUB'], signedAt: '2026-01-10',
          commitments: [{ commitmentId: 'c-0', title: 'Deliver', dueDate: '2026-08-01', responsible: { party: 'VEN', institution: 'Academia de Ciencias' } }],
        }, '2026-03-01T00:00:00.000Z');
      } else if (i % 7 === 0) {
        const now = '2026-03-02T00:00:00.000Z';
        await writer.review(i % 2 ? 'review-2' : 'review-3', { type: 'RescheduleReview', now, scheduledFor: new Date(Date.parse('2026-07-01T09:00:00.000Z') + i * 3_600_000).toISOString() }, now);
      } else {
        await writer.agreement(`live-${Math.floor(i / 4) * 4}`, { type: 'ReportProgress', commitmentId: 'c-0', percent: 1 + (i % 98) }, '2026-03-03T00:00:00.000Z');
      }
    };
    // One command at a time, as one client sends them: no concurrency conflicts to retry.
    let queue = Promise.resolve();
    const command = () => (queue = queue.then(send));
    let running = false;
    let paused = false;
    let loop: Promise<void> = Promise.resolve();
    return {
      own,
      liveStore,
      /** How many commands were sent so far. */
      sent: () => n,
      command,
      startSending() {
        running = true;
        loop = (async () => {
          while (running) {
            if (!paused) await command();
            await new Promise((r) => setTimeout(r, 2));
          }
        })();
      },
      /** Stops the stream of commands and waits for the one in flight. */
      async pause() {
        paused = true;
        await queue;
      },
      resume() {
        paused = false;
      },
      async stopSending() {
        running = false;
        await loop;
        await queue;
      },
      /** Waits for the projector to apply the whole log, then holds every document and answer against a fresh replay. */
      async expectEqualToReplay() {
        const head = (await own.headPosition())!;
        expect(await waitForCheckpoint(liveStore, head, 5000)).toBe(true);
        const replay = createMemoryReadStore();
        await projectInto(replay, await own.readAll({ after: null, limit: 1_000_000 }));
        const instants = ['2026-04-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'];
        expect(await documents(liveStore)).toEqual(await documents(replay));
        expect(await answers(liveStore, instants)).toEqual(await answers(replay, instants));
        expect(await liveStore.checkpoint()).toBe(head);
      },
    };
  }

  /** The log as the rebuild sees it, with a hook the first time it reaches the head. */
  function atHead(own: EventStore, hook: () => Promise<void>): Pick<EventStore, 'readAll' | 'headPosition'> {
    let reached = false;
    return {
      headPosition: () => own.headPosition(),
      async readAll(o) {
        const batch = await own.readAll(o);
        if (!reached && batch.length < o.limit) {
          reached = true;
          await hook();
        }
        return batch;
      },
    };
  }

  it('loses nothing written while it runs: a live projector that got ahead of it ends equal to a fresh replay of the log', async () => {
    const ns = namespace();
    const service = await liveService(ns);
    service.startSending();
    // The first time the rebuild reaches the head, the live projector moves past it and goes idle
    // before the switch: switching there would leave the rebuilt generation behind the projector,
    // whose next commit (into the new generation) would then skip what lies in between.
    const log = atHead(service.own, async () => {
      await service.pause();
      for (let k = 0; k < 6; k++) await service.command();
      expect(await waitForCheckpoint(service.liveStore, (await service.own.headPosition())!, 5000)).toBe(true);
    });
    const progress: RebuildProgress[] = [];
    const sentBefore = service.sent();
    const summary = await rebuildReadModels({ eventStore: log, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 100, dropDelayMs: 50, onProgress: (p) => progress.push(p) });
    const sentDuring = service.sent() - sentBefore;
    service.resume();
    await new Promise((r) => setTimeout(r, 200));
    await service.stopSending();

    expect(summary.switched).toBe(true);
    expect(progress.some((p) => p.phase === 'catching-up')).toBe(true);
    expect(sentDuring).toBeGreaterThan(6);
    expect(service.sent() - sentBefore - sentDuring).toBeGreaterThan(10);
    expect(await service.liveStore.generation()).toBe(2);
    await service.expectEqualToReplay();
  });

  it('makes a projector whose commit was in flight at the switch resubscribe from the new generation, losing nothing', async () => {
    const ns = namespace();
    const gate = `${ns}:test-gate`;
    const warnings: string[] = [];
    const captured = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    let armed: (() => void) | null = null;
    // The store's commit reads `current`, then the checkpoint and the lease, and `current` again,
    // on the reader connection. A BLPOP queued behind the first read holds the others until the
    // gate opens, so the switch lands inside the commit, as it can in production.
    const service = await liveService(ns, {
      logger: captured,
      wrap: (store) => ({
        ...store,
        commit(changes, checkpoint, o) {
          const committing = store.commit(changes, checkpoint, o);
          if (armed) {
            void store.redis.blpop(gate, 10);
            armed();
            armed = null;
          }
          return committing;
        },
      }),
    });
    const log = atHead(service.own, async () => {
      const blocked = new Promise<void>((resolve) => {
        armed = resolve;
      });
      for (let k = 0; k < 3; k++) await service.command();
      await blocked;
    });
    const summary = await rebuildReadModels({
      eventStore: log, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 100, dropDelayMs: 50,
      onProgress: (p) => {
        if (p.phase === 'dropping') void admin.lpush(gate, 'open');
      },
    });
    expect(summary.switched).toBe(true);
    service.startSending();
    await new Promise((r) => setTimeout(r, 200));
    await service.stopSending();

    expect(warnings.some((l) => l.includes('resubscribing from its checkpoint'))).toBe(true);
    expect(await service.liveStore.generation()).toBe(2);
    await service.expectEqualToReplay();
    await admin.del(gate);
  });

  describe('check mode', () => {
    it('finds no difference in healthy read models, and neither switches nor leaves the rebuilt generation behind', async () => {
      const ns = await liveNamespace();
      const live = followingCurrent(ns);
      const summary = await rebuildReadModels({ eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger, check: true });
      expect(summary).toMatchObject({ switched: false, differences: [], compared: { agreements: 122, reviews: 12, exact: true, liveCheckpoint: log.at(-1)!.position } });
      expect(await live.generation()).toBe(1);
      expect(await admin.get(`${ns}:current`)).toBeNull();
      expect(await keysOf(ns, 2)).toBe(0);
    });

    it('reports a live document corrupted in Redis by its id and first differing field, and one that went missing, without switching', async () => {
      const ns = await liveNamespace();
      const live = followingCurrent(ns);
      const key = `${ns}:g1:a:agr-03`;
      const doc = JSON.parse((await admin.get(key))!) as AgreementDoc;
      await admin.set(key, JSON.stringify({ ...doc, agreement: { ...doc.agreement, title: 'Rewritten behind the log' } }));
      await admin.del(`${ns}:g1:r:review-5`);
      const reviewRevision = (await projectInto(createMemoryReadStore(), log)).reviews.get('review-5')!.revision;

      const summary = await rebuildReadModels({ eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger, check: true });

      expect(summary.switched).toBe(false);
      expect(summary.differences).toContainEqual({
        kind: 'agreement', id: 'agr-03', description: `agreement.title: live "Rewritten behind the log", rebuilt ${JSON.stringify(doc.agreement.title)}`,
      });
      expect(summary.differences).toContainEqual({ kind: 'review', id: 'review-5', description: `missing from the live read models (the log gives revision ${reviewRevision})` });
      expect(summary.differences.filter((d) => d.kind !== 'dashboard').map((d) => d.id)).toEqual(['agr-03', 'review-5']);
      expect(await live.generation()).toBe(1);
      expect((await live.getAgreements(['agr-03'])).get('agr-03')!.agreement.title).toBe('Rewritten behind the log');
      expect(await keysOf(ns, 2)).toBe(0);
    });

    it('compares only documents at the same revision when the live read models lag behind the log', async () => {
      const ns = namespace();
      const live = followingCurrent(ns);
      await projectLive(live, log.slice(0, Math.floor(log.length * 0.8)), 1000);
      const summary = await rebuildReadModels({ eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger, check: true, alignWaitMs: 0 });
      expect(summary.differences).toEqual([]);
      expect(summary.compared).toMatchObject({ exact: false, liveCheckpoint: log[Math.floor(log.length * 0.8) - 1]!.position });
      expect(summary.checkpoint).toBe(log.at(-1)!.position);
    });
  });

  it('reports progress as it goes, with growing counts, a rate and an estimate of the time left', async () => {
    const ns = namespace();
    const calls: RebuildProgress[] = [];
    const summary = await rebuildReadModels({ eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 500, dropDelayMs: 0, onProgress: (p) => calls.push({ ...p }) });

    const building = calls.filter((p) => p.phase === 'building' && p.events > 0);
    expect(building.length).toBe(Math.ceil(log.length / 500));
    for (let i = 1; i < building.length; i++) {
      expect(building[i]!.events).toBeGreaterThan(building[i - 1]!.events);
      expect(BigInt(building[i]!.position!)).toBeGreaterThan(BigInt(building[i - 1]!.position!));
    }
    expect(building.at(-1)).toMatchObject({ events: log.length, position: log.at(-1)!.position, head: log.at(-1)!.position, etaSeconds: 0 });
    expect(building.every((p) => p.eventsPerSecond > 0 && p.etaSeconds !== null && p.etaSeconds >= 0)).toBe(true);
    expect(building[0]!.etaSeconds).toBeGreaterThan(0);
    expect(calls.map((p) => p.phase).filter((p, i, all) => p !== all[i - 1])).toEqual(['building', 'switching', 'dropping', 'done']);
    expect(summary.events).toBe(log.length);
  });

  it('refuses to run beside another rebuild of the same namespace', async () => {
    const ns = namespace();
    await admin.set(`${ns}:rebuild:lock`, 'someone-else', 'PX', 10_000);
    await expect(rebuildReadModels({ eventStore: shared, redisUrl: REDIS_URL, namespace: ns, logger })).rejects.toThrow(/another rebuild of namespace .* is running/);
    expect(await admin.get(`${ns}:current`)).toBeNull();
  });

  describe('a rebuild that lost its lock', () => {
    /** The log as a rebuild reads it, with a hook before its n-th read: after its (n-1)-th commit, before the next. */
    function pausedBefore(read: number, hook: () => Promise<void>): Pick<EventStore, 'readAll' | 'headPosition'> {
      let reads = 0;
      return {
        headPosition: () => shared.headPosition(),
        async readAll(o) {
          if (++reads === read) await hook();
          return shared.readAll(o);
        },
      };
    }
    const settled = (p: Promise<unknown>) => p.then((v) => ({ resolved: v }), (err: unknown) => err);

    it('stops with RebuildLockLostError at its next commit, writes nothing more and leaves the generation to the lock\'s holder', async () => {
      const ns = namespace();
      const lockKey = `${ns}:rebuild:lock`;
      let atPause: string | null = null;
      let keysAtPause = 0;
      // The lock ran out while the process stood still (SIGSTOP, a long pause) and someone else took it.
      const eventStore = pausedBefore(3, async () => {
        atPause = await admin.get(`${ns}:g2:checkpoint`);
        keysAtPause = await keysOf(ns, 2);
        await admin.set(lockKey, `${ns}-test-holder`, 'PX', 60_000);
      });

      const outcome = await settled(rebuildReadModels({ eventStore, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 100, dropDelayMs: 0 }));

      expect(outcome).toBeInstanceOf(RebuildLockLostError);
      expect(outcome).toBeInstanceOf(RebuildInProgressError);
      expect((outcome as Error).message).toMatch(new RegExp(`lost the rebuild lock ${lockKey}.*nothing was switched`));
      expect(atPause).toBe(log[199]!.position);
      expect(keysAtPause).toBeGreaterThan(100);
      // Not one more batch, no switch, and the generation is left to the lock's holder, not dropped.
      expect(await admin.get(`${ns}:g2:checkpoint`)).toBe(atPause);
      expect(await keysOf(ns, 2)).toBe(keysAtPause);
      expect(await admin.get(`${ns}:current`)).toBeNull();
      expect(await admin.get(lockKey)).toBe(`${ns}-test-holder`);
    });

    it('cannot switch readers once its lock is lost after its last batch, and leaves that generation to the lock\'s holder', async () => {
      const ns = namespace();
      const lockKey = `${ns}:rebuild:lock`;
      // One full batch, then an empty read at the head: the hook runs there, after every commit and before the switch.
      let hooked = false;
      const eventStore: Pick<EventStore, 'readAll' | 'headPosition'> = {
        headPosition: () => shared.headPosition(),
        async readAll(o) {
          const batch = await shared.readAll(o);
          if (batch.length === 0 && !hooked) {
            hooked = true;
            await admin.set(lockKey, `${ns}-test-holder`, 'PX', 60_000);
          }
          return batch;
        },
      };

      const outcome = await settled(rebuildReadModels({ eventStore, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: log.length, dropDelayMs: 0 }));

      expect(hooked).toBe(true);
      expect(outcome).toBeInstanceOf(RebuildLockLostError);
      expect(await admin.get(`${ns}:current`)).toBeNull();
      expect(await admin.get(`${ns}:g2:checkpoint`)).toBe(log.at(-1)!.position);
      expect(await admin.get(lockKey)).toBe(`${ns}-test-holder`);
    });

    it('drops nothing on its way out when it fails for another reason after the lock was lost', async () => {
      const ns = namespace();
      const lockKey = `${ns}:rebuild:lock`;
      let keysAtPause = 0;
      let reads = 0;
      const eventStore: Pick<EventStore, 'readAll' | 'headPosition'> = {
        headPosition: () => shared.headPosition(),
        async readAll(o) {
          if (++reads === 3) {
            keysAtPause = await keysOf(ns, 2);
            await admin.set(lockKey, `${ns}-test-holder`, 'PX', 60_000);
            throw new Error('the log could not be read');
          }
          return shared.readAll(o);
        },
      };

      const outcome = await settled(rebuildReadModels({ eventStore, redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 100, dropDelayMs: 0 }));

      expect(outcome).toBeInstanceOf(RebuildLockLostError);
      expect(((outcome as Error).cause as Error).message).toBe('the log could not be read');
      expect(keysAtPause).toBeGreaterThan(100);
      expect(await keysOf(ns, 2)).toBe(keysAtPause);
      expect(await admin.get(lockKey)).toBe(`${ns}-test-holder`);
    });

    it('cannot commit into, switch to or drop the generation of the rebuild that took its lock: that one switches to a generation equal to a replay', async () => {
      const ns = namespace();
      let pausedFirst!: () => void;
      let wakeFirst!: () => void;
      const firstPaused = new Promise<void>((r) => (pausedFirst = r));
      const firstWakes = new Promise<void>((r) => (wakeFirst = r));
      const first = settled(rebuildReadModels({
        eventStore: pausedBefore(3, async () => {
          pausedFirst();
          await firstWakes;
        }),
        redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 100, dropDelayMs: 0,
      }));
      await firstPaused;
      // Its lock expires while it stands still; a second rebuild takes the lock and builds the same
      // next generation. The first wakes when the second has committed its first batch.
      await admin.del(`${ns}:rebuild:lock`);
      let firstOutcome: unknown = null;
      const summary = await rebuildReadModels({
        eventStore: pausedBefore(2, async () => {
          wakeFirst();
          firstOutcome = await first;
        }),
        redisUrl: REDIS_URL, namespace: ns, logger, batchSize: 150, dropDelayMs: 0,
      });

      expect(firstOutcome).toBeInstanceOf(RebuildLockLostError);
      expect(summary).toMatchObject({ switched: true, generation: 2, previousGeneration: 1, events: log.length, checkpoint: log.at(-1)!.position });
      const live = followingCurrent(ns);
      expect(await live.generation()).toBe(2);
      const replay = createMemoryReadStore();
      await projectInto(replay, log);
      expect(await documents(live)).toEqual(await documents(replay));
      const instants = ['2026-01-01T00:00:00.000Z', ledger.end];
      expect(await answers(live, instants)).toEqual(await answers(replay, instants));
      expect(await admin.get(`${ns}:rebuild:lock`)).toBeNull();
    });
  });
});
