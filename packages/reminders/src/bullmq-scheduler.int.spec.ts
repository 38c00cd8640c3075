// The BullMQ scheduler against the real Redis: what the reminders role relies on — a send runs
// once and at its time, a re-plan takes back what it dropped, failures retry with backoff and
// end in one failure record, and jobs outlive a restart while a lost queue is rebuilt by a
// re-sync. The processor is a plain recording object (it is a plain function by design).
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBullmqScheduler } from './bullmq-scheduler.js';
import type { PlannedReminder } from './reminder-planning.js';
import { SendInProgressError, type ReminderProcessor, type ReminderScheduler, type RetryPolicy } from './reminder-scheduler.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = pino({ level: 'silent' });
const FAST_RETRY: RetryPolicy = { attempts: 3, backoffMs: 50 };

let admin: Redis;
beforeAll(() => {
  admin = new Redis(REDIS_URL);
});
afterAll(async () => {
  await admin.quit();
});

/** Records every call; `behaviour` decides what the n-th send of a reminder does. */
function fakeProcessor(behaviour: (job: PlannedReminder, call: number) => Promise<unknown> = async () => 'sent') {
  const sends: { id: string; at: number }[] = [];
  const fails: { id: string; error: unknown; attempts: number }[] = [];
  const processor: ReminderProcessor = {
    async send(job) {
      const call = sends.filter((s) => s.id === job.id).length + 1;
      sends.push({ id: job.id, at: Date.now() });
      return behaviour(job, call);
    },
    async fail(job, error, attempts) {
      fails.push({ id: job.id, error, attempts });
    },
  };
  return { processor, sends, fails, sentIds: () => sends.map((s) => s.id) };
}

function planned(reviewId: string, email: string, sendAt: Date): PlannedReminder {
  const scheduledFor = '2027-01-20T15:00:00.000Z';
  return {
    id: `${reviewId}|${scheduledFor}|1d|${email}`,
    reviewId,
    scheduledFor,
    offset: '1d',
    covers: ['1d'],
    email,
    name: null,
    locale: 'en',
    sendAt: sendAt.toISOString(),
  };
}
const inMs = (ms: number) => new Date(Date.now() + ms);

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Each test gets its own namespace and leaves nothing behind.
const opened: ReminderScheduler[] = [];
const namespaces: string[] = [];
function newNamespace(): string {
  const ns = `test-rem-${randomUUID().slice(0, 8)}`;
  namespaces.push(ns);
  return ns;
}
function open(namespace: string, processor: ReminderProcessor, retry?: RetryPolicy): ReminderScheduler {
  const s = createBullmqScheduler({ redisUrl: REDIS_URL, namespace, processor, logger, ...(retry ? { retry } : {}) });
  opened.push(s);
  return s;
}
async function obliterate(namespace: string): Promise<void> {
  const q = new Queue(`${namespace}-reminders`, { connection: admin });
  await q.obliterate({ force: true });
  await q.close();
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
  for (const ns of namespaces.splice(0)) {
    await obliterate(ns);
    const keys = await admin.keys(`${ns}:*`);
    if (keys.length) await admin.del(...keys);
  }
});

describe('BullMQ reminder scheduler', () => {
  it('runs a due send once', async () => {
    const fake = fakeProcessor();
    const s = open(newNamespace(), fake.processor);
    const a = planned('r1', 'ana@example.org', new Date());
    await s.sync('r1', [a]);
    await until(() => fake.sends.length === 1);
    await pause(300);
    expect(fake.sentIds()).toEqual([a.id]);
    expect(await s.pending()).toEqual([]);
  });

  it('runs a delayed send after its delay, not before', async () => {
    const fake = fakeProcessor();
    const s = open(newNamespace(), fake.processor);
    const a = planned('r1', 'ana@example.org', inMs(1500));
    const t0 = Date.now();
    await s.sync('r1', [a]);
    expect(await s.pending()).toEqual([a.id]);
    await pause(100);
    expect(fake.sends).toEqual([]);
    await until(() => fake.sends.length === 1);
    expect(fake.sends[0]!.at).toBeGreaterThanOrEqual(Date.parse(a.sendAt));
    expect(fake.sends[0]!.at - t0).toBeGreaterThanOrEqual(1490);
  });

  it('enqueues a send once when the same plan is synced twice', async () => {
    const fake = fakeProcessor();
    const s = open(newNamespace(), fake.processor);
    const plan = [planned('r1', 'ana@example.org', inMs(1500))];
    await s.sync('r1', plan);
    await s.sync('r1', plan);
    await Promise.all([s.sync('r1', plan), s.sync('r1', plan)]);
    expect(await s.pending()).toEqual([plan[0]!.id]);
    await until(() => fake.sends.length === 1);
    await pause(300);
    expect(fake.sends).toHaveLength(1);
  });

  it('takes back a send that a new plan drops: it never runs', async () => {
    const fake = fakeProcessor();
    const s = open(newNamespace(), fake.processor);
    const kept = planned('r1', 'ana@example.org', inMs(1500));
    const dropped = planned('r1', 'ben@example.org', inMs(1500));
    const otherReview = planned('r2', 'cy@example.org', inMs(1500));
    await s.sync('r1', [kept, dropped]);
    await s.sync('r2', [otherReview]);
    await s.sync('r1', [kept]);
    expect((await s.pending()).sort()).toEqual([kept.id, otherReview.id].sort());
    await until(() => fake.sends.length === 2);
    await pause(300);
    expect(fake.sentIds().sort()).toEqual([kept.id, otherReview.id].sort());
  });

  it('leaves a send that is running to finish when a new plan drops it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fake = fakeProcessor(async () => {
      await gate;
      return 'sent';
    });
    const s = open(newNamespace(), fake.processor);
    const a = planned('r1', 'ana@example.org', new Date());
    await s.sync('r1', [a]);
    await until(() => fake.sends.length === 1);
    await s.sync('r1', []);
    release();
    await pause(300);
    expect(fake.sends).toHaveLength(1);
    expect(fake.fails).toEqual([]);
    expect(await s.pending()).toEqual([]);
  });

  it('retries a failing send with exponential backoff until it succeeds, without a failure record', async () => {
    const fake = fakeProcessor(async (_job, call) => {
      if (call <= 2) throw new Error(`451 try again later (${call})`);
      return 'sent';
    });
    const s = open(newNamespace(), fake.processor, FAST_RETRY);
    await s.sync('r1', [planned('r1', 'ana@example.org', new Date())]);
    await until(() => fake.sends.length === 3);
    await pause(300);
    expect(fake.sends).toHaveLength(3);
    expect(fake.fails).toEqual([]);
    const [first, second, third] = fake.sends.map((x) => x.at) as [number, number, number];
    // 50 ms, then 100 ms: BullMQ never runs a retry before its backoff.
    expect(second - first).toBeGreaterThanOrEqual(45);
    expect(third - second).toBeGreaterThanOrEqual(95);
  });

  it('ends a send that always fails in exactly one failure record with the attempt count', async () => {
    const fake = fakeProcessor(async () => {
      throw new Error('550 mailbox unavailable');
    });
    const s = open(newNamespace(), fake.processor, FAST_RETRY);
    const a = planned('r1', 'ana@example.org', new Date());
    await s.sync('r1', [a]);
    await until(() => fake.fails.length === 1);
    await pause(400);
    expect(fake.sends).toHaveLength(FAST_RETRY.attempts);
    expect(fake.fails).toHaveLength(1);
    expect(fake.fails[0]).toMatchObject({ id: a.id, attempts: FAST_RETRY.attempts });
    expect((fake.fails[0]!.error as Error).message).toBe('550 mailbox unavailable');
    expect(await s.pending()).toEqual([]);
  });

  it('looks again at a send another process holds without spending an attempt', async () => {
    // The first run finds the send claimed elsewhere; with one attempt only, spending it there
    // would end the job in a failure record while the holder's mail goes out.
    const fake = fakeProcessor(async (job, call) => {
      if (call === 1) throw new SendInProgressError(job.id);
      return 'sent';
    });
    const s = createBullmqScheduler({ redisUrl: REDIS_URL, namespace: newNamespace(), processor: fake.processor, logger, retry: { attempts: 1, backoffMs: 50 }, inProgressRecheckMs: 100 });
    opened.push(s);
    const a = planned('r1', 'ana@example.org', new Date());
    await s.sync('r1', [a]);
    await until(() => fake.sends.length === 2);
    expect(fake.sends[1]!.at - fake.sends[0]!.at).toBeGreaterThanOrEqual(100);
    expect(fake.fails).toEqual([]);
    expect(await s.pending()).toEqual([]);
  });

  it('keeps delayed sends across a restart', async () => {
    const ns = newNamespace();
    const before = fakeProcessor();
    const first = open(ns, before.processor);
    const a = planned('r1', 'ana@example.org', inMs(2000));
    await first.sync('r1', [a]);
    await first.close();

    const after = fakeProcessor();
    const second = open(ns, after.processor);
    expect(await second.pending()).toEqual([a.id]);
    await until(() => after.sends.length === 1);
    await pause(200);
    expect(after.sentIds()).toEqual([a.id]);
    expect(before.sends).toEqual([]);
  });

  it('rebuilds a lost queue when the plan is synced again, as the reminders role does at start', async () => {
    const ns = newNamespace();
    const fake = fakeProcessor();
    const s = open(ns, fake.processor);
    const plan = [planned('r1', 'ana@example.org', inMs(1500)), planned('r1', 'ben@example.org', inMs(1500))];
    await s.sync('r1', plan);
    // Redis restarted with nothing on disk: the queue and the review sets are gone.
    await obliterate(ns);
    await admin.del(`${ns}:reminders:review:r1`);
    expect(await s.pending()).toEqual([]);

    await s.sync('r1', plan);
    expect((await s.pending()).sort()).toEqual(plan.map((p) => p.id).sort());
    await until(() => fake.sends.length === 2);
    await pause(200);
    expect(fake.sentIds().sort()).toEqual(plan.map((p) => p.id).sort());
  });
});
