// Reminder throughput (not a test: it prints figures and writes them to bench/results/).
//
//   pnpm bench:reminders            1,000 reviews x 3 attendees = 3,000 mails
//   pnpm bench:reminders --quick    100 reviews (300 mails)
//   pnpm bench:reminders --reviews 500
//   pnpm bench:reminders --bullmq   also the BullMQ adapter (REDIS_URL, default redis://127.0.0.1:6379)
//   pnpm bench:reminders --in-flight 16   baseline sends at most 16 at a time (default: all at once)
//
// The figure: time from scheduling the reviews (offsets 7d,1d, meeting 3 days ahead, so the 7d
// reminder of every attendee is already due) to the last mail received by a local SMTP server.
// The library runs in this process as main.ts wires it in embedded mode: SQLite log, memory read
// models + projector, reminders role, scheduler, SMTP mailer. The reviews are written through the
// review decider, 16 at a time (as 16 API clients would).
// Beside it, measured in the same run against the same server: the same number of raw nodemailer
// sends (one connection per message, as the mailer does), all started at once as the in-process
// scheduler starts every due send at once (`--in-flight N` caps them instead).
// The SMTP server is a child process (this file with `--smtp-sink`), so it never shares an event
// loop with what is measured. smtp-server waits 100 ms before its greeting (early-talker check),
// so every mail costs at least 100 ms and the figures measure how many sends run side by side as
// much as how fast each one is. Loopback only; temp folders and Redis keys are removed at the end.
// Results: bench/results/reminders-<ISO timestamp, ':' and '.' as '-'>.json.
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createTransport } from 'nodemailer';
import SMTPTransport from 'nodemailer/lib/smtp-transport';
import { SMTPServer } from 'smtp-server';
import {
  agreementStream, decideAgreement, decideReview, evolveReview, initialAgreementState, initialReviewState, reviewStream,
  type Attendee, type ReviewEvent, type Timed,
} from '@cm/domain';
import { createSqliteEventStore, type EventStore } from '@cm/event-store';
import { createLogger, type Logger } from '@cm/platform';
import { createMemoryReadStore, createProjector, waitForCheckpoint } from '@cm/read-models';
import * as reminders from '@cm/reminders';
import {
  createInProcessScheduler, createMailer, createReminderSender, createRemindersRole, renderReminder,
  type ReminderOffset, type ReminderProcessor, type ReminderScheduler, type RetryPolicy,
} from '@cm/reminders';

const BENCH_FILE = fileURLToPath(import.meta.url);
const REPO_ROOT = path.resolve(path.dirname(BENCH_FILE), '..', '..');
const args = process.argv.slice(2);

// ---------------------------------------------------------------------------------------------
// The SMTP sink, when this file runs as the child `--smtp-sink`: accepts everything and tells
// the parent, per message, when it was received and its Message-ID.
// ---------------------------------------------------------------------------------------------
type SinkMessage = { t: 'ready'; port: number } | { t: 'mail'; at: number; messageId: string };

function runSink(): void {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    // A reverse DNS lookup per connection would measure the resolver, not the senders.
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      let head = '';
      stream.on('data', (c: Buffer) => {
        if (head.length < 8192) head += c.toString('latin1');
      });
      stream.on('end', () => {
        const at = Date.now();
        callback();
        const messageId = /^message-id:\s*(\S+)/im.exec(head)?.[1] ?? '';
        process.send!({ t: 'mail', at, messageId } satisfies SinkMessage);
      });
    },
  });
  server.listen(0, '127.0.0.1', () => process.send!({ t: 'ready', port: (server.server.address() as AddressInfo).port } satisfies SinkMessage));
  process.on('disconnect', () => server.close(() => process.exit(0)));
}

type Sink = {
  url: string;
  /** Starts counting afresh; resolves when `expected` mails arrived, with the last arrival time. */
  expect(expected: number, onProgress: (n: number) => void): { done: Promise<{ lastAt: number; distinct: number }>; count(): number };
  close(): Promise<void>;
};

async function startSink(): Promise<Sink> {
  const child: ChildProcess = fork(BENCH_FILE, ['--smtp-sink'], { cwd: REPO_ROOT, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the SMTP sink exited (${code}) before it listened`)));
    child.on('message', (m: SinkMessage) => m.t === 'ready' && resolve(m.port));
  });
  let onMail: ((m: Extract<SinkMessage, { t: 'mail' }>) => void) | null = null;
  child.on('message', (m: SinkMessage) => m.t === 'mail' && onMail?.(m));
  return {
    url: `smtp://127.0.0.1:${port}`,
    expect(expected, onProgress) {
      let n = 0;
      const ids = new Set<string>();
      const done = new Promise<{ lastAt: number; distinct: number }>((resolve) => {
        onMail = (m) => {
          n++;
          ids.add(m.messageId);
          onProgress(n);
          if (n === expected) resolve({ lastAt: m.at, distinct: ids.size });
        };
      });
      return { done, count: () => n };
    },
    async close() {
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The measured runs.
// ---------------------------------------------------------------------------------------------
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const REVIEWS = Number(flag('--reviews') ?? (quick ? 100 : 1000));
const ATTENDEES = 3;
const MAILS = REVIEWS * ATTENDEES;
const WRITERS = 16;
const BASELINE_IN_FLIGHT = Number(flag('--in-flight') ?? MAILS);
const AGREEMENTS = 10;
const OFFSETS: ReminderOffset[] = [{ label: '7d', ms: 7 * 86_400_000 }, { label: '1d', ms: 86_400_000 }];
const TIMEOUT_MS = Number(flag('--timeout') ?? 600) * 1000;
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const LOCALES = ['en', 'es', 'ru'] as const;

type CreateBullmqScheduler = (o: { redisUrl: string; namespace: string; processor: ReminderProcessor; logger: Logger; retry?: RetryPolicy }) => ReminderScheduler;

/** Runs `task(i)` for i in [0, n) with at most `width` running at once. */
async function pool(n: number, width: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) await task(next++);
  }));
}

function progressLine(label: string, started: number) {
  let last = 0;
  return (n: number, total: number, force = false) => {
    const t = Date.now();
    if (!force && t - last < 1000 && n !== total) return;
    last = t;
    const s = (t - started) / 1000;
    process.stdout.write(`\r  ${label}: ${n}/${total} mails, ${s.toFixed(1)} s, ${Math.round(n / Math.max(s, 0.001))} mails/s   `);
    if (n === total) process.stdout.write('\n');
  };
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not done within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/** A mail of the size the reminders send: one rendered for an agenda of three agreements. */
function sampleMail() {
  const commitments = Array.from({ length: 4 }, (_, c) => ({
    title: `Commitment ${c}`, responsible: { party: 'VEN', institution: `Institution ${c}` }, dueDate: '2026-03-31', status: 'pending' as const, overdue: true, progress: 0,
  }));
  return renderReminder({
    review: { id: 'bench-review', title: 'Bench review', scheduledFor: new Date(Date.now() + 3 * 86_400_000).toISOString(), location: null },
    agenda: [0, 1, 2].map((a) => ({ agreementId: `bench-${a}`, title: `Bench agreement ${a}`, status: 'delayed' as const, progress: 10, commitments })),
    reminder: { email: 'desk@example.org', name: null, locale: 'en' },
    publicUrl: null,
    now: new Date().toISOString(),
  });
}

async function baseline(sink: Sink, n: number, label = 'raw nodemailer') {
  const transport = createTransport(new SMTPTransport({ url: sink.url, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 10_000 }));
  const mail = sampleMail();
  const started = Date.now();
  const show = progressLine(label, started);
  const { done } = sink.expect(n, (k) => show(k, n));
  await pool(n, BASELINE_IN_FLIGHT, async (i) => {
    await transport.sendMail({ from: 'Monitor <monitor@localhost>', to: `attendee-${i}@example.org`, subject: mail.subject, text: mail.text, html: mail.html, messageId: `<raw-${i}-${started}@bench>` });
  });
  const { lastAt, distinct } = await withTimeout(done, label);
  transport.close();
  const seconds = (lastAt - started) / 1000;
  return { mails: n, distinct, seconds, mailsPerSecond: n / seconds };
}

async function signAgreements(store: EventStore): Promise<string[]> {
  const ids: string[] = [];
  for (let a = 0; a < AGREEMENTS; a++) {
    const id = `bench-agreement-${a}`;
    const events = decideAgreement({
      type: 'SignAgreement', agreementId: id, title: `Bench agreement ${a}`, kind: 'agreement', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
      commitments: Array.from({ length: 6 }, (_, c) => ({
        commitmentId: `c-${c}`, title: `Commitment ${c}`, dueDate: c % 2 ? '2026-03-31' : '2099-12-31', responsible: { party: c % 3 ? 'VEN' : 'RUS', institution: `Institution ${c}` },
      })),
    }, initialAgreementState(), { now: new Date().toISOString(), occurredAt: new Date().toISOString() });
    await store.append(agreementStream(id), events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: { actor: 'bench', occurredAt: new Date().toISOString(), correlationId: randomUUID() } })), { expectedRevision: 'no_stream' });
    ids.push(id);
  }
  return ids;
}

async function scheduleReview(store: EventStore, i: number, agreementIds: string[], scheduledFor: string): Promise<void> {
  const reviewId = `bench-review-${String(i).padStart(5, '0')}`;
  const attendees: Attendee[] = LOCALES.map((locale, k) => ({ email: `attendee-${i}-${k}@example.org`, locale }));
  const now = new Date().toISOString();
  const stream = reviewStream(reviewId);
  // Read-fold-decide-append, as the API's command runner does.
  const state = (await store.readStream(stream)).reduce((s, e) => evolveReview(s, { type: e.type, data: e.data, occurredAt: e.metadata.occurredAt } as Timed<ReviewEvent>), initialReviewState());
  const events = decideReview({
    type: 'ScheduleReview', now, reviewId, title: `Bench review ${i}`, scheduledFor, attendees,
    agreementIds: [agreementIds[i % agreementIds.length]!, agreementIds[(i + 1) % agreementIds.length]!],
  }, state);
  await store.append(stream, events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: { actor: 'bench', occurredAt: now, correlationId: randomUUID() } })), { expectedRevision: 'no_stream' });
}

async function libraryRun(sink: Sink, adapter: 'in-process' | 'bullmq', createBullmq: CreateBullmqScheduler | null) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cm-reminders-bench-'));
  const logger = createLogger({ level: process.env.LOG_LEVEL || 'warn', fd: 2 });
  const namespace = `bench-${randomUUID().slice(0, 8)}`;
  const eventStore = createSqliteEventStore({ path: path.join(dir, 'events.sqlite') });
  const readStore = createMemoryReadStore();
  const projector = createProjector({ eventStore, readStore, logger });
  const mailer = createMailer({ smtpUrl: sink.url, outboxDir: path.join(dir, 'outbox'), from: 'Monitor <monitor@localhost>' });
  const now = () => new Date();
  const sender = createReminderSender({ eventStore, mailer, offsets: OFFSETS, now, publicUrl: null, logger });
  const scheduler = adapter === 'bullmq'
    ? createBullmq!({ redisUrl: REDIS_URL, namespace, processor: sender, logger })
    : createInProcessScheduler({ processor: sender, logger });
  const role = createRemindersRole({ eventStore, scheduler, offsets: OFFSETS, now, logger });
  try {
    await projector.start();
    await role.start();
    const agreementIds = await signAgreements(eventStore);
    await waitForCheckpoint(readStore, (await eventStore.headPosition())!, 10_000);

    const label = `${adapter} adapter`;
    const started = Date.now();
    const show = progressLine(label, started);
    const { done } = sink.expect(MAILS, (k) => show(k, MAILS));
    const scheduledFor = new Date(started + 3 * 86_400_000).toISOString();
    await pool(REVIEWS, WRITERS, (i) => scheduleReview(eventStore, i, agreementIds, scheduledFor));
    const scheduledMs = Date.now() - started;
    const { lastAt, distinct } = await withTimeout(done, label);
    const seconds = (lastAt - started) / 1000;

    // The record: one ReminderSent per mail, once the last sends have written theirs.
    const count = () => (eventStore.db.prepare("SELECT count(*) AS n FROM events WHERE type = 'ReminderSent'").get() as { n: number }).n;
    const deadline = Date.now() + 30_000;
    while (count() < MAILS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const recorded = count();
    const failed = (eventStore.db.prepare("SELECT count(*) AS n FROM events WHERE type = 'ReminderFailed'").get() as { n: number }).n;
    return { adapter, reviews: REVIEWS, mails: MAILS, distinct, recorded, failed, scheduledSeconds: scheduledMs / 1000, seconds, mailsPerSecond: MAILS / seconds };
  } finally {
    await role.stop();
    await mailer.close();
    await projector.stop();
    await eventStore.close();
    rmSync(dir, { recursive: true, force: true });
    if (adapter === 'bullmq') {
      const redis = new Redis(REDIS_URL);
      for (const pattern of [`bull:${namespace}-reminders:*`, `${namespace}:*`]) {
        const keys = await redis.keys(pattern);
        if (keys.length) await redis.del(...keys);
      }
      await redis.quit();
    }
  }
}

async function main(): Promise<void> {
  const wantBullmq = args.includes('--bullmq');
  const mod: object = reminders;
  const createBullmq = 'createBullmqScheduler' in mod ? (mod.createBullmqScheduler as CreateBullmqScheduler) : null;
  console.log(`reminders bench: ${REVIEWS} reviews x ${ATTENDEES} attendees = ${MAILS} mails, offsets ${OFFSETS.map((o) => o.label).join(',')} (all due), ${os.cpus().length} CPUs, node ${process.version}`);
  const sink = await startSink();
  console.log(`  SMTP sink (child process) at ${sink.url}`);
  const results: Record<string, unknown> = {};
  try {
    // Warms the sink and this process's SMTP client up; not counted.
    await baseline(sink, Math.min(200, MAILS), 'warm-up');
    const raw = await baseline(sink, MAILS);
    results.baseline = raw;
    const inProcess = await libraryRun(sink, 'in-process', null);
    results.inProcess = inProcess;
    let bull: Awaited<ReturnType<typeof libraryRun>> | null = null;
    if (wantBullmq) {
      if (!createBullmq) console.log('  BullMQ adapter: not available (@cm/reminders exports no createBullmqScheduler)');
      else results.bullmq = bull = await libraryRun(sink, 'bullmq', createBullmq);
    }

    const rows: [string, string, string][] = [
      [`raw nodemailer, ${BASELINE_IN_FLIGHT >= MAILS ? 'all' : BASELINE_IN_FLIGHT} in flight`, `${Math.round(raw.mailsPerSecond)} mails/s`, `${raw.seconds.toFixed(2)} s for ${raw.mails} mails (baseline)`],
    ];
    for (const r of [inProcess, bull]) {
      if (!r) continue;
      rows.push([
        `reminders, ${r.adapter} adapter`,
        `${Math.round(r.mailsPerSecond)} mails/s`,
        `${r.seconds.toFixed(2)} s from scheduling ${r.reviews} reviews to the last of ${r.mails} mails (writes done at ${r.scheduledSeconds.toFixed(2)} s); ` +
          `${(r.seconds / raw.seconds).toFixed(1)}x the baseline's time; ${r.distinct} distinct Message-IDs, ${r.recorded} ReminderSent, ${r.failed} ReminderFailed`,
      ]);
    }
    console.log('');
    for (const [a, b, c] of rows) console.log(`${a.padEnd(36)} ${b.padStart(14)}  ${c}`);
    for (const r of [inProcess, bull]) {
      if (r && (r.distinct !== r.mails || r.recorded !== r.mails)) {
        console.log(`  WARNING (${r.adapter}): ${r.mails} mails expected once each, ${r.distinct} distinct received, ${r.recorded} recorded`);
        process.exitCode = 1;
      }
    }
    const out = path.join(REPO_ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    const file = path.join(out, `reminders-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${process.platform}/${process.arch}` },
      reviews: REVIEWS, attendees: ATTENDEES, offsets: OFFSETS.map((o) => o.label), ...results,
    }, null, 2));
    console.log(`results written to ${path.relative(REPO_ROOT, file)}`);
  } finally {
    await sink.close();
  }
}

if (args.includes('--smtp-sink')) {
  runSink();
} else {
  main().catch((err: unknown) => {
    console.error(`reminders bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  });
}
