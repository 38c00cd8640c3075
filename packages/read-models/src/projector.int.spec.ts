// The projector against a real SQLite log in a temp folder and the memory read store: rebuild at
// start, following live appends, read-your-writes waiting, rebuild equals live, retried batches
// that neither lose nor double anything, a stop inside its resubscription window that is final,
// and the status it reports.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGREEMENT_EVENT_TYPES, REVIEW_EVENT_TYPES, agreementStream, foldAgreement, foldReview, reviewStream, type AgreementEvent, type ReviewEvent, type Timed } from '@cm/domain';
import { createSqliteEventStore, type SqliteEventStore, type StoredEvent } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import type { AgreementDoc, ReviewDoc } from './documents.js';
import { createProjector, waitForCheckpoint, type Projector } from './projector.js';
import { agreementFilter, createQueries } from './queries.js';
import { createMemoryReadStore, type ReadStore } from './read-store.js';
import { createRedisReadStore, dropGeneration } from './redis-read-store.js';
import { createFlakyReadStore } from './testing/flaky-read-store.js';
import { createLedgerWriter, type LedgerWriter } from './testing/ledger-writer.js';
import { createRestartWindowStore, type StopPoint } from './testing/restart-window.js';
import { writeMixedLedger } from './testing/mixed-ledger.js';

const logger = createLogger({ level: 'silent' });
const WAIT_MS = 5_000;

let dir: string;
let eventStore: SqliteEventStore;
let writer: LedgerWriter;
let running: Projector[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cm-projector-'));
  eventStore = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 10 });
  writer = createLedgerWriter(eventStore);
  running = [];
});

afterEach(async () => {
  for (const p of running) await p.stop();
  await eventStore.close();
  rmSync(dir, { recursive: true, force: true });
});

async function startProjector(readStore: ReadStore, batchSize?: number): Promise<Projector> {
  const projector = createProjector({ eventStore, readStore, logger, ...(batchSize ? { batchSize } : {}) });
  running.push(projector);
  await projector.start();
  return projector;
}

/** Waits until the read store holds the whole log as it is now. */
async function caughtUp(readStore: ReadStore): Promise<void> {
  const head = await eventStore.headPosition();
  expect(head).not.toBeNull();
  expect(await waitForCheckpoint(readStore, head!, WAIT_MS)).toBe(true);
}

async function waitUntil(cond: () => Promise<boolean> | boolean, ms = WAIT_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const byId = <T>(docs: T[], id: (d: T) => string) => [...docs].sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0));
const agreementDocs = async (s: ReadStore) => byId<AgreementDoc>(await s.allAgreements(), (d) => d.agreement.id);
const reviewDocs = async (s: ReadStore) => byId<ReviewDoc>(await s.allReviews(), (d) => d.review.id);

const timed = <E>(e: StoredEvent) => ({ type: e.type, data: e.data, occurredAt: e.metadata.occurredAt }) as unknown as Timed<E>;

const SIGNED_AT = '2026-01-05T10:00:00.000Z';

async function sign(id: string, commitments: { id: string; dueDate: string }[], sector = 'health') {
  return writer.agreement(id, {
    type: 'SignAgreement',
    agreementId: id,
    title: `Agreement ${id}`,
    kind: 'agreement',
    sector,
    parties: ['VEN', 'RUS'],
    signedAt: '2025-11-28',
    commitments: commitments.map((c) => ({ commitmentId: c.id, title: `Deliver ${c.id}`, dueDate: c.dueDate, responsible: { party: 'VEN', institution: 'Ministry of Health' } })),
  }, SIGNED_AT);
}

async function schedule(id: string, scheduledFor: string, agreementIds: string[]) {
  return writer.review(id, {
    type: 'ScheduleReview', now: SIGNED_AT, reviewId: id, title: `Review ${id}`, scheduledFor, agreementIds, attendees: [{ email: 'desk@example.org' }],
  }, SIGNED_AT);
}

/** A few agreements, delays and a review: enough that a lost or doubled event would show. */
async function smallLedger() {
  const results = [
    await sign('health', [{ id: 'clinic', dueDate: '2026-06-30' }, { id: 'vaccines', dueDate: '2026-03-31' }]),
    await sign('air', [{ id: 'route', dueDate: '2026-09-30' }], 'air_transport'),
    await writer.agreement('health', { type: 'DelayCommitment', commitmentId: 'vaccines', reason: 'late funds', newDueDate: '2026-05-31' }, '2026-01-10T09:00:00.000Z'),
    await writer.agreement('health', { type: 'AddCommitment', commitment: { commitmentId: 'training', title: 'Train staff', dueDate: '2026-12-31', responsible: { party: 'RUS', institution: 'Gamaleya Centre' } } }, '2026-01-11T09:00:00.000Z'),
    await schedule('spring', '2026-04-15T09:00:00.000Z', ['health', 'air']),
    await writer.review('spring', { type: 'RescheduleReview', now: '2026-01-12T09:00:00.000Z', scheduledFor: '2026-04-22T09:00:00.000Z' }, '2026-01-12T09:00:00.000Z'),
    await writer.agreement('air', { type: 'ReportProgress', commitmentId: 'route', percent: 25 }, '2026-01-13T09:00:00.000Z'),
    await writer.agreement('health', { type: 'DelayCommitment', commitmentId: 'vaccines', reason: 'later still', newDueDate: '2026-07-31' }, '2026-01-14T09:00:00.000Z'),
  ];
  return { events: results.reduce((n, r) => n + r.events.length, 0), last: results.at(-1)! };
}

describe('projector: rebuild at start, then live', () => {
  it('builds the read models from a log written before it started, then follows live appends', async () => {
    await smallLedger();
    const readStore = createMemoryReadStore();
    const queries = createQueries(readStore);
    await startProjector(readStore);
    await caughtUp(readStore);

    const health = (await readStore.getAgreements(['health'])).get('health')!;
    expect(health.agreement.commitments.map((c) => [c.id, c.status, c.dueDate])).toEqual([
      ['clinic', 'pending', '2026-06-30'],
      ['vaccines', 'delayed', '2026-07-31'],
      ['training', 'pending', '2026-12-31'],
    ]);
    expect(health.agreement.commitments[1]!.delays).toHaveLength(2);
    expect(health.revision).toBe(5);
    expect(health.reviews).toEqual([{ id: 'spring', title: 'Review spring', scheduledFor: '2026-04-22T09:00:00.000Z', status: 'scheduled' }]);
    expect((await queries.listAgreements(agreementFilter.parse({}), '2026-02-01T00:00:00.000Z')).items.map((a) => [a.id, a.status])).toEqual([
      ['air', 'in_implementation'],
      ['health', 'delayed'],
    ]);

    // Live: a command appended now shows once its position is applied.
    const implemented = await writer.agreement('air', { type: 'ImplementCommitment', commitmentId: 'route' }, '2026-02-01T09:00:00.000Z');
    const signed = await sign('science', [{ id: 'lab', dueDate: '2026-12-31' }], 'science');
    expect(await waitForCheckpoint(readStore, signed.position, WAIT_MS)).toBe(true);
    expect(await waitForCheckpoint(readStore, implemented.position, 0)).toBe(true);

    const air = (await readStore.getAgreements(['air'])).get('air')!;
    expect(air.agreement.commitments[0]).toMatchObject({ status: 'implemented', progress: 100 });
    expect(air.position).toBe(implemented.position);
    const page = await queries.listAgreements(agreementFilter.parse({}), '2026-02-02T00:00:00.000Z');
    expect(page.items.map((a) => [a.id, a.status])).toEqual([
      ['air', 'implemented'],
      ['health', 'delayed'],
      ['science', 'signed'],
    ]);
  });

  it('resumes after its checkpoint when restarted on the same read store, applying only what is new', async () => {
    await smallLedger();
    const readStore = createMemoryReadStore();
    const first = await startProjector(readStore);
    await caughtUp(readStore);
    await first.stop();
    const before = await agreementDocs(readStore);

    const added = await writer.agreement('health', { type: 'AddCommitment', commitment: { commitmentId: 'audit', title: 'Audit', dueDate: '2026-10-31', responsible: { party: 'VEN', institution: 'Contraloría' } } }, '2026-02-01T09:00:00.000Z');
    const second = await startProjector(readStore);
    expect(await waitForCheckpoint(readStore, added.position, WAIT_MS)).toBe(true);

    expect((await second.status()).eventsApplied).toBe(1);
    const health = (await readStore.getAgreements(['health'])).get('health')!;
    expect(health.agreement.commitments.map((c) => c.id)).toEqual(['clinic', 'vaccines', 'training', 'audit']);
    expect((await agreementDocs(readStore)).find((d) => d.agreement.id === 'air')).toEqual(before.find((d) => d.agreement.id === 'air'));
  });

  it('moves its checkpoint past batches that change no agreement, or no document at all', async () => {
    await smallLedger();
    const readStore = createMemoryReadStore();
    await startProjector(readStore);
    await caughtUp(readStore);
    const before = await agreementDocs(readStore);

    const reminder = await writer.review('spring', { type: 'RecordReminderSent', scheduledFor: '2026-04-22T09:00:00.000Z', offset: '7d', email: 'desk@example.org', sentAt: '2026-04-15T09:00:00.000Z' }, '2026-04-15T09:00:00.000Z');
    expect(await waitForCheckpoint(readStore, reminder.position, WAIT_MS)).toBe(true);
    const foreign = await eventStore.append('settings-main', [{ id: randomUUID(), type: 'SettingChanged', data: { key: 'x' }, metadata: { actor: 'test', occurredAt: '2026-04-16T09:00:00.000Z', correlationId: randomUUID() } }], { expectedRevision: 'any' });
    expect(await waitForCheckpoint(readStore, foreign.position, WAIT_MS)).toBe(true);

    expect(await agreementDocs(readStore)).toEqual(before);
    expect((await readStore.getReviews(['spring'])).get('spring')!.review.reminders).toHaveLength(1);
  });
});

describe('waitForCheckpoint', () => {
  it('resolves true at once for a position already applied', async () => {
    const { last } = await smallLedger();
    const readStore = createMemoryReadStore();
    await startProjector(readStore);
    await caughtUp(readStore);
    expect(await waitForCheckpoint(readStore, last.position, 0)).toBe(true);
    expect(await waitForCheckpoint(readStore, '1', 0)).toBe(true);
  });

  it('resolves true once the position is applied, not before', async () => {
    const { last } = await smallLedger();
    const readStore = createMemoryReadStore();
    let settled = false;
    const waiting = waitForCheckpoint(readStore, last.position, WAIT_MS).then((ok) => {
      settled = true;
      return ok;
    });
    await new Promise((r) => setTimeout(r, 60));
    expect(settled).toBe(false);

    await startProjector(readStore);

    expect(await waiting).toBe(true);
    expect(await readStore.checkpoint()).toBe(last.position);
  });

  it('resolves false after its timeout when the position is never applied', async () => {
    const { last } = await smallLedger();
    const readStore = createMemoryReadStore();
    await startProjector(readStore);
    await caughtUp(readStore);

    const beyond = String(BigInt(last.position) + 1n);
    const started = Date.now();
    expect(await waitForCheckpoint(readStore, beyond, 150)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe('projector: rebuilding gives the same answers as live', () => {
  it('rebuilds into a fresh store documents deep-equal to the live ones, over a mixed log of ~300 events', async () => {
    const live = createMemoryReadStore();
    // Live: small batches while the log is being written.
    await startProjector(live, 16);
    const ledger = await writeMixedLedger(writer, { agreements: 30, reviews: 4, targetEvents: 300, seed: 20251128 });
    expect(ledger.events).toBeGreaterThanOrEqual(290);
    expect(ledger.events).toBeLessThanOrEqual(320);
    // Every kind of event the ledger knows is in the log, so every rule is exercised.
    const types = new Set((await eventStore.readAll({ after: null, limit: 1000 })).map((e) => e.type));
    expect([...types].sort()).toEqual([...AGREEMENT_EVENT_TYPES, ...REVIEW_EVENT_TYPES].sort());
    await caughtUp(live);

    const rebuilt = createMemoryReadStore();
    await startProjector(rebuilt);
    await caughtUp(rebuilt);

    const liveAgreements = await agreementDocs(live);
    // The 30 random agreements and the two whose lifecycle the ledger walks through.
    expect(liveAgreements).toHaveLength(32);
    expect(await agreementDocs(rebuilt)).toEqual(liveAgreements);
    expect(await reviewDocs(rebuilt)).toEqual(await reviewDocs(live));
    expect(await rebuilt.checkpoint()).toBe(await live.checkpoint());

    // And both say what the log says, stream by stream: nothing lost, nothing doubled.
    for (const doc of liveAgreements) {
      const stream = await eventStore.readStream(agreementStream(doc.agreement.id));
      expect(doc.agreement).toEqual(foldAgreement(stream.map(timed<AgreementEvent>)));
      expect(doc.revision).toBe(stream.at(-1)!.revision);
      expect(doc.position).toBe(stream.at(-1)!.position);
    }
    const liveReviews = await reviewDocs(live);
    expect(liveReviews.map((d) => d.review.status).sort()).toEqual(['cancelled', 'held', 'scheduled', 'scheduled']);
    for (const doc of liveReviews) {
      const stream = await eventStore.readStream(reviewStream(doc.review.id));
      const review = foldReview(stream.map(timed<ReviewEvent>));
      expect(doc.review).toEqual(review);
      // Every agreement in scope points at the review as it now stands.
      for (const id of doc.review.agreementIds) {
        const ref = liveAgreements.find((a) => a.agreement.id === id)!.reviews.find((r) => r.id === doc.review.id);
        expect(ref).toEqual({ id: doc.review.id, title: doc.review.title, scheduledFor: doc.review.scheduledFor, status: doc.review.status });
      }
    }

    // The queries a user sees answer the same.
    const now = ledger.end;
    expect(await createQueries(rebuilt).dashboard(now)).toEqual(await createQueries(live).dashboard(now));
  });
});

describe('projector: a failed batch is retried, and nothing is lost or doubled', () => {
  async function clean(): Promise<{ agreements: AgreementDoc[]; reviews: ReviewDoc[] }> {
    const fresh = createMemoryReadStore();
    await startProjector(fresh);
    await caughtUp(fresh);
    return { agreements: await agreementDocs(fresh), reviews: await reviewDocs(fresh) };
  }

  it('retries a batch whose commit failed, reporting the error meanwhile', async () => {
    const { events } = await smallLedger();
    const inner = createMemoryReadStore();
    const flaky = createFlakyReadStore(inner);
    flaky.failNext(3, 'before-writing');
    const projector = await startProjector(flaky.store, 4);

    await waitUntil(async () => (await projector.status()).lastError !== null);
    const failing = await projector.status();
    expect(failing.caughtUp).toBe(false);
    expect(failing.lastError).toMatch(/read store commit failed/);

    await caughtUp(flaky.store);
    expect(flaky.failedCommits).toBe(3);
    const status = await projector.status();
    expect(status.lastError).toBeNull();
    expect(status.eventsApplied).toBe(events);
    expect({ agreements: await agreementDocs(inner), reviews: await reviewDocs(inner) }).toEqual(await clean());
  });

  it('replays a batch whose commit was written but not acknowledged without doubling it', async () => {
    const { events } = await smallLedger();
    const inner = createMemoryReadStore();
    const flaky = createFlakyReadStore(inner);
    // The first batch (everything up to the second delay) is written, then reported as failed.
    flaky.failNext(1, 'after-writing');
    await startProjector(flaky.store, 10);

    await caughtUp(flaky.store);
    expect(flaky.failedCommits).toBe(1);
    const health = (await inner.getAgreements(['health'])).get('health')!.agreement;
    expect(health.commitments.map((c) => c.id)).toEqual(['clinic', 'vaccines', 'training']);
    expect(health.commitments[1]!.delays).toHaveLength(2);
    expect({ agreements: await agreementDocs(inner), reviews: await reviewDocs(inner) }).toEqual(await clean());
    expect((await inner.checkpoint())).toBe(String(events));
  });

  it('survives failures in the middle of a long live log', async () => {
    const inner = createMemoryReadStore();
    const flaky = createFlakyReadStore(inner);
    await startProjector(flaky.store, 8);
    const a = await writeMixedLedger(writer, { agreements: 10, reviews: 2, targetEvents: 60, seed: 7 });
    await caughtUp(flaky.store);
    // Two acknowledgements lost in a row, while new events keep arriving, then the store down once.
    flaky.failNext(2, 'after-writing');
    const b = await sign('late-one', [{ id: 'x-1', dueDate: '2026-12-31' }]);
    await writer.agreement('late-one', { type: 'DelayCommitment', commitmentId: 'x-1', reason: 'late', newDueDate: '2027-03-31' }, '2026-03-01T09:00:00.000Z');
    await waitUntil(() => flaky.pendingFailures === 0);
    flaky.failNext(1, 'before-writing');
    await writer.agreement('late-one', { type: 'AddCommitment', commitment: { commitmentId: 'x-2', title: 'Second', dueDate: '2027-01-31', responsible: { party: 'VEN', institution: 'Ministry' } } }, '2026-03-02T09:00:00.000Z');

    await caughtUp(flaky.store);
    expect(flaky.failedCommits).toBe(3);
    expect(a.events + b.events.length + 2).toBe(Number(await eventStore.headPosition()));
    const lateOne = (await inner.getAgreements(['late-one'])).get('late-one')!.agreement;
    expect(lateOne.commitments.map((c) => [c.id, c.delays.length])).toEqual([['x-1', 1], ['x-2', 0]]);
    expect({ agreements: await agreementDocs(inner), reviews: await reviewDocs(inner) }).toEqual(await clean());
  });
});

describe('projector: stopped inside its resubscription window, it stays stopped', () => {
  const points: StopPoint[] = ['after-the-refused-batch', 'while-resubscribing'];

  it.each(points)('stopped %s: no subscription is left reading the log or the read store', async (at) => {
    await smallLedger();
    const window = createRestartWindowStore(createMemoryReadStore(), at, () => projector.stop());
    const projector = createProjector({ eventStore, readStore: window.store, logger });
    running.push(projector);
    await projector.start();
    await window.stopped();

    // New events would wake a subscription still open; every batch it tried would read documents.
    const calls = window.calls;
    await sign('after-stop', [{ id: 'late', dueDate: '2026-12-31' }]);
    await new Promise((r) => setTimeout(r, 300)); // thirty poll intervals of the log
    expect(window.calls, 'read-store calls after stop()').toBe(calls);
  });

  it.each(points)('stopped %s: the process then exits by itself (no timer left behind)', async (at) => {
    await smallLedger();
    const script = join(dirname(fileURLToPath(import.meta.url)), 'testing', 'stop-in-restart-window.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, dir, at], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = await new Promise<number | null | 'still running'>((resolve) => {
      const timer = setTimeout(() => resolve('still running'), 10_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
    if (exited === 'still running') child.kill('SIGKILL');
    expect(output).toContain('stopped');
    expect(exited, output).toBe(0);
  }, 20_000);
});

describe('projector: fenced (its lease taken over), it stops retrying', () => {
  it('stops reading after the first batch refused for the lease, rather than retrying it every poll', async () => {
    await smallLedger();
    const ns = `fenced-${randomUUID().slice(0, 8)}`;
    const redisStore = createRedisReadStore({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', namespace: ns });
    const fence = { key: `${ns}:lease:holder`, token: '000000000001:stale' };
    await redisStore.redis.set(fence.key, '000000000002:successor');
    let reads = 0;
    const counted: ReadStore = {
      ...redisStore,
      async getReviews(ids) {
        reads++;
        return redisStore.getReviews(ids);
      },
    };
    try {
      const projector = createProjector({ eventStore, readStore: counted, logger, fence });
      running.push(projector);
      await projector.start();
      await waitUntil(async () => (await projector.status()).lastError !== null);
      expect((await projector.status()).lastError).toMatch(/no longer held/);

      const before = reads;
      await sign('after-fence', [{ id: 'late', dueDate: '2026-12-31' }]);
      await new Promise((r) => setTimeout(r, 300)); // thirty poll intervals of the log
      expect(reads, 'batches tried after the refusal').toBe(before);
      expect(await redisStore.checkpoint()).toBeNull();
    } finally {
      await dropGeneration(redisStore.redis, ns, 1);
      await redisStore.redis.del(`${ns}:current`, fence.key);
      await redisStore.close();
    }
  });
});

describe('projector: status', () => {
  it('reports an empty log as caught up', async () => {
    const projector = await startProjector(createMemoryReadStore());
    expect(await projector.status()).toEqual({ checkpoint: null, head: null, caughtUp: true, eventsApplied: 0, lastError: null });
  });

  it('reports the head and checkpoint positions, and whether it has caught up', async () => {
    const { events, last } = await smallLedger();
    const readStore = createMemoryReadStore();
    const projector = createProjector({ eventStore, readStore, logger });
    running.push(projector);

    expect(await projector.status()).toEqual({ checkpoint: null, head: last.position, caughtUp: false, eventsApplied: 0, lastError: null });

    await projector.start();
    await caughtUp(readStore);
    expect(await projector.status()).toEqual({ checkpoint: last.position, head: last.position, caughtUp: true, eventsApplied: events, lastError: null });

    await projector.stop();
    const next = await writer.agreement('air', { type: 'ReportProgress', commitmentId: 'route', percent: 60 }, '2026-02-01T09:00:00.000Z');
    expect(await projector.status()).toMatchObject({ checkpoint: last.position, head: next.position, caughtUp: false });
  });
});
