// The reminders role on BullMQ when Redis loses its data while the processes run (FLUSHALL, or a
// restart without persistence): the role's check finds its marker gone and re-plans every review
// from the log, and what the log records as sent is not queued again. The Redis here is a
// private redis-server started by the test (flushing the shared one would wipe other people's
// tests), with nothing on disk.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agreementDecider, agreementStream, reviewDecider, reviewStream, type ReviewCommand } from '@cm/domain';
import { createSqliteEventStore, runCommand } from '@cm/event-store';
import { createMemoryReadStore, createProjector } from '@cm/read-models';
import { createBullmqScheduler } from './bullmq-scheduler.js';
import { createMailer } from './mailer.js';
import { reminderId, type ReminderOffset } from './reminder-planning.js';
import { createReminderSender } from './reminder-sender.js';
import { createRemindersRole } from './reminders-role.js';
import { createRedisSendLedger } from './send-ledger.js';
import { startSmtpServer, type SmtpTestServer } from './testing/smtp-test-server.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const HOUR = 3_600_000;
const OFFSETS: ReminderOffset[] = [{ label: '7d', ms: 7 * 24 * HOUR }, { label: '1h', ms: HOUR }];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let redisServer: ChildProcess;
let redisUrl: string;
let admin: Redis;
let smtp: SmtpTestServer;
let dir: string;

beforeAll(async () => {
  const port = await freePort();
  redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  redisUrl = `redis://127.0.0.1:${port}`;
  admin = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => 50 });
  // Refused until the server listens; the wait below retries.
  admin.on('error', () => undefined);
  await until('the private redis-server', async () => (await admin.ping().catch(() => null)) === 'PONG');
  smtp = await startSmtpServer();
  dir = mkdtempSync(join(tmpdir(), 'cm-reminders-loss-'));
});
afterAll(async () => {
  await admin?.quit().catch(() => undefined);
  redisServer?.kill('SIGKILL');
  await smtp?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const context = () => ({ actor: 'test', occurredAt: new Date().toISOString(), correlationId: randomUUID(), idempotencyScope: null, ifMatch: null });
const signAgreement = (store: ReturnType<typeof createSqliteEventStore>) =>
  runCommand(store, agreementStream('energy-2026'), agreementDecider, {
    type: 'SignAgreement', agreementId: 'energy-2026', title: 'Energy protocol', kind: 'protocol', sector: 'energy', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
    commitments: [{ commitmentId: 'grid', title: 'Build the interconnector', dueDate: '2026-06-30', responsible: { party: 'VEN', institution: 'Corpoelec' } }],
  }, context());
const schedule = (store: ReturnType<typeof createSqliteEventStore>, reviewId: string, scheduledFor: string) =>
  runCommand(store, reviewStream(reviewId), reviewDecider, {
    type: 'ScheduleReview', now: new Date().toISOString(), reviewId, title: `Review ${reviewId}`, scheduledFor, agreementIds: ['energy-2026'], attendees: [{ email: 'desk@example.org' }],
  } satisfies ReviewCommand, context());

describe('reminders when Redis loses its data', () => {
  it('re-plans the lost sends from the log on the next check, and queues nothing already sent', async () => {
    const eventStore = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
    const readStore = createMemoryReadStore();
    const projector = createProjector({ eventStore, readStore, logger });
    await projector.start();
    const namespace = 'cm';
    const mailer = createMailer({ smtpUrl: smtp.url, outboxDir: join(dir, 'outbox'), from: 'Commitment monitor <monitor@example.org>' });
    const ledger = createRedisSendLedger({ redisUrl, namespace });
    const now = () => new Date();
    const sender = createReminderSender({ eventStore, mailer, offsets: OFFSETS, now, publicUrl: null, logger, ledger });
    const scheduler = createBullmqScheduler({ redisUrl, namespace, processor: sender, logger });
    const role = createRemindersRole({ eventStore, scheduler, offsets: OFFSETS, now, logger, queueCheckIntervalMs: 0 });
    try {
      await signAgreement(eventStore);
      await role.start();
      // Two hours ahead: the 7d send is due at once, the 1h one waits in the queue.
      const scheduledFor = new Date(Date.now() + 2 * HOUR).toISOString();
      await schedule(eventStore, 'flushed', scheduledFor);
      const later = reminderId('flushed', scheduledFor, '1h', 'desk@example.org');
      await until('the 7d mail', () => smtp.received.length === 1);
      const recorded = async () => (await eventStore.readStream(reviewStream('flushed'))).filter((e) => e.type === 'ReminderSent').length;
      await until('its ReminderSent', async () => (await recorded()) === 1);
      await until('the 1h send queued', async () => (await scheduler.pending()).join() === later);
      expect(await role.checkQueue()).toBe(false);

      await admin.flushall();
      expect(await scheduler.pending()).toEqual([]);

      expect(await role.checkQueue()).toBe(true);
      // The 1h send is back; the 7d one, recorded as sent, is not queued again.
      expect(await scheduler.pending()).toEqual([later]);
      expect(await role.checkQueue()).toBe(false);

      // The queue runs after the loss: a review due at once now still gets its mail, once.
      await schedule(eventStore, 'after-flush', new Date(Date.now() + 2 * HOUR).toISOString());
      await until('the mail of the review planned after the loss', () => smtp.received.length === 2);
      expect(smtp.received.filter((r) => r.mail.subject?.includes('Review flushed'))).toHaveLength(1);
      expect(await recorded()).toBe(1);
    } finally {
      await role.stop();
      await ledger.close();
      await mailer.close();
      await projector.stop();
      await eventStore.close();
    }
  });
});
