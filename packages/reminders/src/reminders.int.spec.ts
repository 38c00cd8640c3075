// The reminders end to end inside one process, built as main.ts builds the embedded mode: a real
// SQLite log in a temp folder, memory read models fed by the projector, the reminders role with
// the in-process scheduler, and the SMTP mailer talking to a real smtp-server on loopback whose
// messages are parsed with mailparser. Reviews and agreements are written through the domain
// deciders into the same log, as the API does. Time is a clock the test moves (offsets of a
// second or two before a review a few seconds ahead): a send is checked not to go out 1 ms before
// its instant and to go out at it, whatever the machine's load; only I/O is waited for, on a
// condition. Every mail is matched to its ReminderSent by Message-ID, so what was received and
// what was recorded can be held against each other.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  agreementDecider, agreementStream, reviewDecider, reviewStream,
  type AgreementCommand, type Attendee, type ReviewCommand, type Timed,
} from '@cm/domain';
import { createSqliteEventStore, runCommand, type EventStore, type SqliteEventStore, type StoredEvent } from '@cm/event-store';
import { createMemoryReadStore, createProjector, createQueries, waitForCheckpoint, type ReadStore } from '@cm/read-models';
import { Redis } from 'ioredis';
import { createMailer, type Mailer } from './mailer.js';
import { FAILED_SEND_RETRY, planReminders, reminderId, type ReminderOffset } from './reminder-planning.js';
import { createInProcessScheduler, SendInProgressError, type ReminderScheduler, type RetryPolicy } from './reminder-scheduler.js';
import { loadReview, createReminderSender } from './reminder-sender.js';
import { createRemindersRole } from './reminders-role.js';
import { createRedisSendLedger } from './send-ledger.js';
import { startSmtpServer, type SmtpTestServer } from './testing/smtp-test-server.js';
import { createTestClock, type TestClock } from './testing/test-clock.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const FROM = 'Commitment monitor <monitor@example.org>';
const SECOND = 1000;
const DAY = 86_400_000;
const WEEK_AND_DAY: ReminderOffset[] = [{ label: '7d', ms: 7 * DAY }, { label: '1d', ms: DAY }];
const FAST_RETRY: RetryPolicy = { attempts: 3, backoffMs: 100 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The clock of the running test; every stack, command and plan in it reads this one. */
let clock: TestClock;
const inMs = (ms: number) => new Date(clock.now().getTime() + ms).toISOString();
/** `iso` moved by `ms`. */
const shift = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

/** Waits for I/O (SQLite, SMTP) to land; the deadline is only there to end a broken test. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

// --- SMTP server on loopback ------------------------------------------------------------------

/** The test SMTP server, closed after each test. */
async function startSmtp(options: { refuse?: (attempt: number) => boolean } = {}): Promise<Smtp> {
  const smtp = await startSmtpServer(options);
  closers.push(smtp.close);
  return smtp;
}
type Smtp = SmtpTestServer;

// --- the reminders stack, as main.ts builds it in embedded mode -------------------------------

type Stack = {
  eventStore: SqliteEventStore;
  readStore: ReadStore;
  scheduler: ReminderScheduler & { settled(): Promise<void> };
  close(): Promise<void>;
};

/**
 * Opens the log at `file` and runs projector + reminders role on it. `senderStore` lets a test
 * put a fault in the log the sender writes to (the role and the projector keep the real one).
 */
async function startStack(o: {
  file: string;
  smtpUrl: string;
  offsets: readonly ReminderOffset[];
  retry?: RetryPolicy;
  senderStore?: (real: EventStore) => EventStore;
  /** Lets a test put a fault in the mailer (around the real SMTP one). */
  mailer?: (real: Mailer) => Mailer;
  /** No projector: the read models stay empty, as when the projection lags far behind. */
  withoutProjector?: boolean;
}): Promise<Stack> {
  const eventStore = createSqliteEventStore({ path: o.file, pollIntervalMs: 20 });
  const readStore = createMemoryReadStore();
  const projector = createProjector({ eventStore, readStore, logger });
  if (!o.withoutProjector) {
    await projector.start();
    const head = await eventStore.headPosition();
    if (head) await waitForCheckpoint(readStore, head, 5000);
  }
  const now = () => clock.now();
  const mailer = createMailer({ smtpUrl: o.smtpUrl, outboxDir: join(tmpdir(), 'cm-unused-outbox'), from: FROM });
  const sender = createReminderSender({
    eventStore: o.senderStore ? o.senderStore(eventStore) : eventStore, mailer: o.mailer ? o.mailer(mailer) : mailer, offsets: o.offsets, now, publicUrl: null, logger,
  });
  const scheduler = createInProcessScheduler({ processor: sender, logger, retry: o.retry ?? FAST_RETRY, clock });
  const role = createRemindersRole({ eventStore, scheduler, offsets: o.offsets, now, logger, queueCheckIntervalMs: 0 });
  await role.start();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await role.stop();
    await mailer.close();
    await projector.stop();
    await eventStore.close();
  };
  closers.push(close);
  return { eventStore, readStore, scheduler, close };
}

// --- writing the ledger through the deciders, as the API's command runner does -----------------

const timed = <E>(e: StoredEvent) => ({ type: e.type, data: e.data, occurredAt: e.metadata.occurredAt }) as unknown as Timed<E>;

/** A command as the api runs it: decided on the current state, retried if another writer (a sender recording ReminderSent) got in first. */
const onAgreement = (store: EventStore, _id: string, command: AgreementCommand) =>
  runCommand(store, agreementStream(_id), agreementDecider, command, testContext()).then(() => undefined);
const onReview = (store: EventStore, id: string, command: ReviewCommand) =>
  runCommand(store, reviewStream(id), reviewDecider, command, testContext()).then(() => undefined);
const testContext = () => ({ actor: 'test', occurredAt: clock.now().toISOString(), correlationId: randomUUID(), idempotencyScope: null, ifMatch: null });

/**
 * Two agreements in force. On the agenda of any review in the next days: two overdue commitments
 * (due 31 March and 30 June 2026) and one delayed to 30 June 2099. Not on it: one due in 2099.
 */
async function signAgreements(store: EventStore): Promise<string[]> {
  await onAgreement(store, 'health-2026', {
    type: 'SignAgreement', agreementId: 'health-2026', title: 'Health cooperation agreement', kind: 'agreement', sector: 'health',
    parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
    commitments: [
      { commitmentId: 'clinics', title: 'Open two clinics', dueDate: '2026-03-31', responsible: { party: 'VEN', institution: 'Ministerio del Poder Popular para la Salud' } },
      { commitmentId: 'nurses', title: 'Train nurses', dueDate: '2099-12-31', responsible: { party: 'RUS', institution: 'Sechenov University' } },
      { commitmentId: 'isotopes', title: 'Supply medical isotopes', dueDate: '2026-09-30', responsible: { party: 'RUS', institution: 'Rosatom' } },
    ],
  });
  await onAgreement(store, 'health-2026', { type: 'DelayCommitment', commitmentId: 'isotopes', reason: 'reactor maintenance', newDueDate: '2099-06-30' });
  await onAgreement(store, 'energy-2026', {
    type: 'SignAgreement', agreementId: 'energy-2026', title: 'Energy protocol', kind: 'protocol', sector: 'energy',
    parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
    commitments: [{ commitmentId: 'grid', title: 'Build the interconnector', dueDate: '2026-06-30', responsible: { party: 'VEN', institution: 'Corpoelec' } }],
  });
  return ['health-2026', 'energy-2026'];
}

const ANA: Attendee = { email: 'ana@example.org', name: 'Ana Pérez', locale: 'es' };
const IVAN: Attendee = { email: 'ivan@example.org', name: 'Ivan Petrov', locale: 'ru' };
const DESK: Attendee = { email: 'desk@example.org' };

function schedule(store: EventStore, reviewId: string, scheduledFor: string, agreementIds: string[], attendees: Attendee[]) {
  return onReview(store, reviewId, {
    type: 'ScheduleReview', now: clock.now().toISOString(), reviewId, title: `Review ${reviewId}`, scheduledFor, agreementIds, attendees,
  });
}

// --- reading what happened --------------------------------------------------------------------

type Sent = { scheduledFor: string; offset: string; email: string; sentAt: string; covers?: string[]; messageId?: string };

/** Nothing in flight any more: what is received now is all this instant sends. */
const settle = (stack: Stack) => stack.scheduler.settled();

/** Fails the first `times` ReminderSent appends, as a busy stream or a busy SQLite would. */
function failingRecords(times: number) {
  const state = { failed: 0 };
  const wrap = (real: EventStore): EventStore => ({
    ...real,
    append: async (stream, events, options) => {
      if (state.failed < times && events.some((e) => e.type === 'ReminderSent')) {
        state.failed++;
        throw new Error('injected: SQLITE_BUSY: database is locked');
      }
      return real.append(stream, events, options);
    },
  });
  return { state, wrap };
}

async function reminderEvents(store: EventStore, reviewId: string) {
  const events = await store.readStream(reviewStream(reviewId));
  return {
    sent: events.filter((e) => e.type === 'ReminderSent').map((e) => e.data as Sent),
    failed: events.filter((e) => e.type === 'ReminderFailed').map((e) => e.data as { offset: string; email: string; attempts: number; error: string }),
  };
}

/** The received mail a ReminderSent stands for (matched by Message-ID). */
function mailOf(smtp: Smtp, sent: Sent): SmtpTestServer['received'][number] {
  const found = smtp.received.filter((r) => r.mail.messageId === sent.messageId);
  expect(found, `one mail with Message-ID ${sent.messageId}`).toHaveLength(1);
  return found[0]!;
}

function makeDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cm-reminders-'));
  closers.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Everything a test opened, closed in reverse order whatever the outcome.
let closers: (() => Promise<void>)[] = [];
beforeEach(() => {
  clock = createTestClock();
});
afterEach(async () => {
  const all = closers.reverse();
  closers = [];
  for (const close of all) await close();
});

describe('reminders over SMTP, in-process scheduler', () => {
  it('sends one mail per attendee at once for offsets already due: right recipient, their language, the agenda, one ReminderSent each', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets: WEEK_AND_DAY });
    const agreements = await signAgreements(stack.eventStore);
    // An hour ahead: both 7d and 1d are past, so they collapse into one mail each, now.
    const scheduledFor = inMs(3_600_000);
    await schedule(stack.eventStore, 'cian-xx', scheduledFor, agreements, [ANA, IVAN, DESK]);

    await until('three mails', () => smtp.received.length === 3);
    await until('three ReminderSent', async () => (await reminderEvents(stack.eventStore, 'cian-xx')).sent.length === 3);
    await settle(stack);
    expect(smtp.received).toHaveLength(3);
    expect(await stack.scheduler.pending()).toEqual([]);

    const { sent, failed } = await reminderEvents(stack.eventStore, 'cian-xx');
    expect(failed).toEqual([]);
    expect(sent.map((s) => s.email).sort()).toEqual([ANA.email, DESK.email, IVAN.email]);
    for (const s of sent) {
      // Recorded under the most urgent due offset, standing for both.
      expect(s).toMatchObject({ scheduledFor, offset: '1d', covers: ['7d', '1d'] });
      expect(mailOf(smtp, s).rcpt).toEqual([s.email]);
    }

    const byRecipient = (email: string) => smtp.received.find((r) => r.rcpt[0] === email)!.mail;
    const expectations = [
      { who: ANA, subject: /^Recordatorio: Review cian-xx el \d{1,2} de \w+ de 2026$/, words: ['Estimado/a Ana Pérez', 'Fecha límite', 'Vencido', '31 de marzo de 2026', '30 de junio de 2026', '30 de junio de 2099', 'Retrasado'] },
      { who: IVAN, subject: /^Напоминание: Review cian-xx — \d{1,2} \S+ 2026 г\.$/, words: ['Здравствуйте, Ivan Petrov!', 'Срок', 'Просрочено', '31 марта 2026 г.', '30 июня 2026 г.', '30 июня 2099 г.', 'С задержкой'] },
      { who: DESK, subject: /^Reminder: Review cian-xx on \d{1,2} \w+ 2026$/, words: ['Hello,', 'Due date', 'Overdue', '31 March 2026', '30 June 2026', '30 June 2099', 'Delayed'] },
    ];
    for (const { who, subject, words } of expectations) {
      const mail = byRecipient(who.email);
      const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
      expect(to?.value[0]?.address).toBe(who.email);
      expect(mail.from?.value[0]?.address).toBe('monitor@example.org');
      expect(mail.subject).toMatch(subject);
      for (const part of [mail.text ?? '', String(mail.html)]) {
        // Case-blind: the text part shouts the overdue mark ([VENCIDO]), the HTML part does not.
        for (const w of words) expect(part.toLocaleLowerCase(), `${who.email}: ${w}`).toContain(w.toLocaleLowerCase());
        for (const institution of ['Ministerio del Poder Popular para la Salud', 'Rosatom', 'Corpoelec']) expect(part).toContain(institution);
        for (const title of ['Health cooperation agreement', 'Energy protocol', 'Open two clinics', 'Supply medical isotopes', 'Build the interconnector']) {
          expect(part).toContain(title);
        }
        // Due long after the meeting and not late: not on the agenda.
        expect(part).not.toContain('Sechenov University');
        expect(part).not.toContain('Train nurses');
      }
    }

    // What GET /v1/reviews/{id} shows, once projected.
    const queries = createQueries(stack.readStore);
    await until('the reminders in the read model', async () => (await queries.reviewDetail('cian-xx', new Date().toISOString()))?.reminders.length === 3);
  });

  it('mails the agenda as the log holds it, even when the read models lag behind', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets: WEEK_AND_DAY, withoutProjector: true });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'cian-lag', inMs(3_600_000), agreements, [DESK]);
    await until('one mail', () => smtp.received.length === 1);
    const text = smtp.received[0]!.mail.text ?? '';
    for (const title of ['Open two clinics', 'Supply medical isotopes', 'Build the interconnector']) expect(text).toContain(title);
  });

  it('sends a future offset at its time, not before, each one once', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const offsets: ReminderOffset[] = [{ label: '7d', ms: 7 * DAY }, { label: '2s', ms: 2 * SECOND }, { label: '1s', ms: SECOND }];
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets });
    const agreements = await signAgreements(stack.eventStore);
    const scheduledFor = inMs(3500);
    await schedule(stack.eventStore, 'steering', scheduledFor, agreements, [IVAN]);

    await until('the 7d mail', () => smtp.received.length === 1);
    await until('the two later sends left', async () => (await stack.scheduler.pending()).length === 2);
    for (const [offset, ms, mailsBefore] of [['2s', 2 * SECOND, 1], ['1s', SECOND, 2]] as const) {
      const dueAt = shift(scheduledFor, -ms);
      // 1 ms before it is due: nothing.
      await clock.advanceTo(shift(dueAt, -1));
      await settle(stack);
      expect(smtp.received, `nothing for ${offset} before ${dueAt}`).toHaveLength(mailsBefore);
      await clock.advanceTo(dueAt);
      await until(`the ${offset} mail`, () => smtp.received.length === mailsBefore + 1);
      await until(`its ReminderSent`, async () => (await reminderEvents(stack.eventStore, 'steering')).sent.length === mailsBefore + 1);
    }
    await clock.advanceTo(shift(scheduledFor, 300));
    await settle(stack);
    expect(smtp.received).toHaveLength(3);

    const { sent } = await reminderEvents(stack.eventStore, 'steering');
    expect(sent.map((s) => s.offset)).toEqual(['7d', '2s', '1s']);
    for (const s of sent) {
      expect(s.covers).toBeUndefined();
      expect(s.scheduledFor).toBe(scheduledFor);
      const mail = mailOf(smtp, s);
      expect(mail.rcpt).toEqual([IVAN.email]);
      expect(mail.mail.subject).toMatch(/^Напоминание: Review steering/);
      const offsetMs = offsets.find((o) => o.label === s.offset)!.ms;
      // Sent at the very instant it was due (the clock stands still while it goes out).
      if (offsetMs < 7 * DAY) expect(s.sentAt).toBe(shift(scheduledFor, -offsetMs));
    }
    expect(await stack.scheduler.pending()).toEqual([]);
  });

  it('sends every future reminder, even when its timer fires a little before the clock reaches it', async () => {
    // Node runs timers on the monotonic clock; against Date.now() about one in three fires up to
    // 1 ms early. The sender re-plans by the wall clock, so a job run early found its send "not
    // due yet" and dropped it for good. This clock fires every timer 1 ms early.
    clock = createTestClock({ fireEarlyMs: 1 });
    const smtp = await startSmtp();
    const dir = makeDir();
    const offsets: ReminderOffset[] = [{ label: '1s', ms: SECOND }];
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets });
    const agreements = await signAgreements(stack.eventStore);
    const ids = Array.from({ length: 20 }, (_, i) => `timely-${i}`);
    const dates = ids.map((_, i) => inMs(1700 + 7 * i));
    for (const [i, id] of ids.entries()) await schedule(stack.eventStore, id, dates[i]!, agreements, [DESK]);
    await until('twenty sends planned', async () => (await stack.scheduler.pending()).length === ids.length);
    // One due instant at a time, so each send goes out at its own instant.
    for (const [i, date] of dates.entries()) {
      await clock.advanceTo(shift(date, -SECOND));
      await until(`mail ${i + 1}`, () => smtp.received.length === i + 1);
      await settle(stack);
    }
    await clock.advanceTo(dates.at(-1)!);
    await settle(stack);
    expect(smtp.received).toHaveLength(ids.length);
    for (const [i, id] of ids.entries()) {
      expect((await reminderEvents(stack.eventStore, id)).sent.map((s) => [s.offset, s.sentAt])).toEqual([['1s', shift(dates[i]!, -SECOND)]]);
    }
  });

  it('re-plans a rescheduled review: the sends of the old date never go out, those of the new date do', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const offsets: ReminderOffset[] = [{ label: '7d', ms: 7 * DAY }, { label: '2s', ms: 2 * SECOND }];
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets });
    const agreements = await signAgreements(stack.eventStore);
    const first = inMs(6000);
    await schedule(stack.eventStore, 'moved', first, agreements, [ANA]);
    await until('the 7d mail for the first date', () => smtp.received.length === 1);

    const second = shift(first, 2000);
    await onReview(stack.eventStore, 'moved', { type: 'RescheduleReview', now: clock.now().toISOString(), scheduledFor: second, reason: 'minister travelling' });
    // The new date's 7d is past too: it goes out at once, as a new reminder for the new date.
    await until('the 7d mail for the new date', () => smtp.received.length === 2);
    await until('only the new date\'s 2s send left', async () => (await stack.scheduler.pending()).join() === reminderId('moved', second, '2s', ANA.email));

    // The old date's 2s instant: nothing.
    await clock.advanceTo(shift(first, -2 * SECOND));
    await settle(stack);
    expect(smtp.received).toHaveLength(2);
    await clock.advanceTo(shift(second, -2 * SECOND));
    await until('three ReminderSent', async () => (await reminderEvents(stack.eventStore, 'moved')).sent.length === 3);
    await settle(stack);
    const { sent } = await reminderEvents(stack.eventStore, 'moved');
    expect(sent.map((s) => [s.scheduledFor, s.offset])).toEqual([[first, '7d'], [second, '7d'], [second, '2s']]);
    expect(smtp.received).toHaveLength(3);
    expect(sent[2]!.sentAt).toBe(shift(second, -2 * SECOND));
    mailOf(smtp, sent[2]!);
    expect(await stack.scheduler.pending()).toEqual([]);
  });

  it('stops what is unsent when a review is cancelled or held', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const offsets: ReminderOffset[] = [{ label: '7d', ms: 7 * DAY }, { label: '2s', ms: 2 * SECOND }];
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets });
    const agreements = await signAgreements(stack.eventStore);
    const scheduledFor = inMs(4000);
    await schedule(stack.eventStore, 'called-off', scheduledFor, agreements, [ANA, DESK]);
    await schedule(stack.eventStore, 'held-early', scheduledFor, agreements, [IVAN]);
    await until('the three 7d mails', () => smtp.received.length === 3);
    // A mail is received before its job ends (it still records ReminderSent): wait for that.
    await until('the three 2s sends left', async () => (await stack.scheduler.pending()).length === 3);

    await onReview(stack.eventStore, 'called-off', { type: 'CancelReview', reason: 'no quorum' });
    const now = clock.now().toISOString();
    await onReview(stack.eventStore, 'held-early', { type: 'RecordReviewOutcome', now, heldAt: now, assessments: [] });
    await until('no pending sends', async () => (await stack.scheduler.pending()).length === 0);

    // The instant the 2s sends were planned for, and past it.
    await clock.advanceTo(shift(scheduledFor, -2 * SECOND));
    await clock.advanceTo(scheduledFor);
    await settle(stack);
    expect(smtp.received).toHaveLength(3);
    expect((await reminderEvents(stack.eventStore, 'called-off')).sent.map((s) => [s.email, s.offset])).toEqual([[ANA.email, '7d'], [DESK.email, '7d']]);
    expect((await reminderEvents(stack.eventStore, 'held-early')).sent.map((s) => [s.email, s.offset])).toEqual([[IVAN.email, '7d']]);
  });

  it('sends nothing twice across restarts, and a restart re-plans what the lost timers held', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const file = join(dir, 'events.sqlite');
    const offsets: ReminderOffset[] = [{ label: '7d', ms: 7 * DAY }, { label: '2s', ms: 2 * SECOND }];
    const first = await startStack({ file, smtpUrl: smtp.url, offsets });
    const agreements = await signAgreements(first.eventStore);
    const scheduledFor = inMs(4500);
    await schedule(first.eventStore, 'restarted', scheduledFor, agreements, [ANA, DESK]);
    await until('the two 7d mails', () => smtp.received.length === 2);
    await until('two ReminderSent', async () => (await reminderEvents(first.eventStore, 'restarted')).sent.length === 2);
    await until('the two 2s sends left', async () => (await first.scheduler.pending()).length === 2);
    await first.close();

    // A new process on the same log: its start reconciles with what the log says was sent.
    const second = await startStack({ file, smtpUrl: smtp.url, offsets });
    expect((await second.scheduler.pending()).length).toBe(2);
    await settle(second);
    expect(smtp.received).toHaveLength(2);
    await clock.advanceTo(shift(scheduledFor, -2 * SECOND));
    await until('the two 2s mails', () => smtp.received.length === 4);
    await until('four ReminderSent', async () => (await reminderEvents(second.eventStore, 'restarted')).sent.length === 4);
    await second.close();

    // Once more, before the meeting, with everything sent.
    const third = await startStack({ file, smtpUrl: smtp.url, offsets });
    expect(await third.scheduler.pending()).toEqual([]);
    await clock.advanceTo(shift(scheduledFor, -1));
    await settle(third);
    expect(smtp.received).toHaveLength(4);
    const { sent } = await reminderEvents(third.eventStore, 'restarted');
    expect(sent).toHaveLength(4);
    expect(sent.map((s) => `${s.email}|${s.offset}`).sort()).toEqual([`${ANA.email}|2s`, `${ANA.email}|7d`, `${DESK.email}|2s`, `${DESK.email}|7d`]);
    expect(new Set(smtp.received.map((r) => r.mail.messageId)).size).toBe(4);
    for (const s of sent) mailOf(smtp, s);
  });

  it('retries a refused send with backoff until the server accepts it, and records it once', async () => {
    const smtp = await startSmtp({ refuse: (n) => n <= 2 });
    const dir = makeDir();
    const retry: RetryPolicy = { attempts: 4, backoffMs: 150 };
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'greylisted', inMs(3_600_000), agreements, [DESK]);

    // Exponential: 150 ms, then 300 ms, between one refusal and the next attempt; not 1 ms less.
    await until('the first refusal', () => smtp.offered.length === 1);
    for (const [wait, offeredBefore] of [[150, 1], [300, 2]] as const) {
      await settle(stack);
      await clock.advanceBy(wait - 1);
      await settle(stack);
      expect(smtp.offered).toHaveLength(offeredBefore);
      await clock.advanceBy(1);
      await until(`attempt ${offeredBefore + 1}`, () => smtp.offered.length === offeredBefore + 1);
    }
    await until('the accepted mail', () => smtp.received.length === 1);
    await until('one ReminderSent', async () => (await reminderEvents(stack.eventStore, 'greylisted')).sent.length === 1);
    await settle(stack);
    await clock.advanceBy(60_000);
    await settle(stack);
    expect(smtp.offered).toHaveLength(3);
    const { sent, failed } = await reminderEvents(stack.eventStore, 'greylisted');
    expect(sent).toHaveLength(1);
    expect(failed).toEqual([]);
    expect(mailOf(smtp, sent[0]!).rcpt).toEqual([DESK.email]);
  });

  it('ends a send the server always refuses in exactly one ReminderFailed, visible on the review', async () => {
    const smtp = await startSmtp({ refuse: () => true });
    const dir = makeDir();
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'refused', inMs(3_600_000), agreements, [ANA]);

    await until('the first refusal', () => smtp.offered.length === 1);
    await settle(stack);
    await clock.advanceBy(FAST_RETRY.backoffMs);
    await until('the second refusal', () => smtp.offered.length === 2);
    await settle(stack);
    await clock.advanceBy(2 * FAST_RETRY.backoffMs);
    await until('one ReminderFailed', async () => (await reminderEvents(stack.eventStore, 'refused')).failed.length === 1);
    // No attempt after the last one, and no second record.
    await settle(stack);
    await clock.advanceBy(60_000);
    await settle(stack);
    expect(smtp.offered).toHaveLength(FAST_RETRY.attempts);
    expect(smtp.received).toEqual([]);
    const { sent, failed } = await reminderEvents(stack.eventStore, 'refused');
    expect(sent).toEqual([]);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ email: ANA.email, offset: '1d', attempts: FAST_RETRY.attempts });
    expect(failed[0]!.error).toMatch(/451/);

    const { state } = await loadReview(stack.eventStore, 'refused');
    expect(state.exists && state.reminderFailures).toEqual([expect.objectContaining({ email: ANA.email, attempts: FAST_RETRY.attempts })]);
    const queries = createQueries(stack.readStore);
    await until('the failure in the read model', async () => (await queries.reviewDetail('refused', new Date().toISOString()))?.reminderFailures.length === 1);
    const detail = await queries.reviewDetail('refused', new Date().toISOString());
    expect(detail?.reminders).toEqual([]);
    expect(detail?.reminderFailures[0]).toMatchObject({ email: ANA.email, offset: '1d', attempts: FAST_RETRY.attempts });
  });

  it('tries a failed send again in the running process after its backoff, and records it sent once it goes', async () => {
    // The server refuses every attempt of the first round, then accepts.
    let refusals = FAST_RETRY.attempts;
    const smtp = await startSmtp({ refuse: () => refusals-- > 0 });
    const dir = makeDir();
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'retried', inMs(3 * 3_600_000), agreements, [ANA]);
    for (let i = 1; i < FAST_RETRY.attempts; i++) {
      await until(`refusal ${i}`, () => smtp.offered.length === i);
      await settle(stack);
      await clock.advanceBy(FAST_RETRY.backoffMs * 2 ** (i - 1));
    }
    await until('one ReminderFailed', async () => (await reminderEvents(stack.eventStore, 'retried')).failed.length === 1);
    await settle(stack);
    // Not before the round's backoff (15 minutes)...
    await clock.advanceBy(FAILED_SEND_RETRY.firstDelayMs - 1_000);
    await settle(stack);
    expect(smtp.received).toEqual([]);
    // ...then once, without a restart.
    await clock.advanceBy(1_000);
    await until('the mail', () => smtp.received.length === 1);
    await until('ReminderSent', async () => (await reminderEvents(stack.eventStore, 'retried')).sent.length === 1);
    await settle(stack);
    expect(smtp.received).toHaveLength(1);
    expect(smtp.received[0]!.rcpt).toEqual([ANA.email]);
  });

  it('mails once when recording ReminderSent fails: the record is retried, never the send', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    // Three failed appends use up the first attempt's own record retries; the fourth fails in the
    // job's second attempt, which finds the mail marked sent and only records.
    const faults = failingRecords(4);
    const stack = await startStack({ file: join(dir, 'events.sqlite'), smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY, senderStore: faults.wrap });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'busy-log', inMs(3_600_000), agreements, [IVAN]);

    await until('the mail', () => smtp.received.length === 1);
    await settle(stack);
    expect(faults.state.failed).toBe(3);
    await clock.advanceBy(FAST_RETRY.backoffMs);
    await until('one ReminderSent', async () => (await reminderEvents(stack.eventStore, 'busy-log')).sent.length === 1);
    await settle(stack);
    await clock.advanceBy(60_000);
    await settle(stack);
    expect(faults.state.failed).toBe(4);
    expect(smtp.received).toHaveLength(1);
    const { sent, failed } = await reminderEvents(stack.eventStore, 'busy-log');
    expect(failed).toEqual([]);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.messageId).toBe(smtp.received[0]!.mail.messageId);
    expect(await stack.scheduler.pending()).toEqual([]);
  });

  it('records a mail as sent, not failed, when every attempt to record it failed', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const file = join(dir, 'events.sqlite');
    // Every append of every attempt fails (3 attempts x 3 tries); the one after the last attempt lands.
    const faults = failingRecords(3 * FAST_RETRY.attempts);
    const stack = await startStack({ file, smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY, senderStore: faults.wrap });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'locked-log', inMs(3_600_000), agreements, [ANA]);

    await until('the mail', () => smtp.received.length === 1);
    for (let attempt = 1; attempt < FAST_RETRY.attempts; attempt++) {
      await settle(stack);
      await clock.advanceBy(FAST_RETRY.backoffMs * 2 ** (attempt - 1));
    }
    await until('one ReminderSent', async () => (await reminderEvents(stack.eventStore, 'locked-log')).sent.length === 1);
    await settle(stack);
    expect(faults.state.failed).toBe(3 * FAST_RETRY.attempts);
    expect(smtp.received).toHaveLength(1);
    expect((await reminderEvents(stack.eventStore, 'locked-log')).failed).toEqual([]);
    await stack.close();

    // Counted as sent: the next start plans nothing for it.
    const after = await startStack({ file, smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY });
    expect(await after.scheduler.pending()).toEqual([]);
    await settle(after);
    expect(smtp.received).toHaveLength(1);
  });

  it('doubles a mail at most once when the process "dies" between SMTP accepting it and marking it sent', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const file = join(dir, 'events.sqlite');
    // Fault injection: the first send fails after the mail was accepted, before anything is
    // marked, as if the process had died right there. The retry plays the next process's attempt.
    let faults = 0;
    let mailsAtFault = -1;
    const dieOnceAfterSmtp = (real: Mailer): Mailer => ({
      ...real,
      send: async (message) => {
        const sent = await real.send(message);
        if (faults === 0) {
          faults++;
          mailsAtFault = smtp.received.length;
          throw new Error('injected: process died after SMTP accepted the mail');
        }
        return sent;
      },
    });
    const stack = await startStack({ file, smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY, mailer: dieOnceAfterSmtp });
    const agreements = await signAgreements(stack.eventStore);
    await schedule(stack.eventStore, 'crash-window', inMs(3_600_000), agreements, [IVAN]);

    await until('the first mail', () => smtp.received.length === 1);
    await settle(stack);
    await clock.advanceBy(FAST_RETRY.backoffMs);
    await until('one ReminderSent', async () => (await reminderEvents(stack.eventStore, 'crash-window')).sent.length === 1);
    await settle(stack);
    await clock.advanceBy(60_000);
    await settle(stack);
    expect(faults).toBe(1);
    expect(mailsAtFault).toBe(1);
    // Sent twice, never more, and both carry the same Message-ID so a client can fold them.
    expect(smtp.received).toHaveLength(2);
    const ids = smtp.received.map((r) => r.mail.messageId);
    expect(ids[0]).toBeDefined();
    expect(ids[1]).toBe(ids[0]);
    const { sent, failed } = await reminderEvents(stack.eventStore, 'crash-window');
    expect(failed).toEqual([]);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.messageId).toBe(ids[0]);
    await stack.close();

    // A real restart afterwards adds nothing.
    const after = await startStack({ file, smtpUrl: smtp.url, offsets: WEEK_AND_DAY, retry: FAST_RETRY });
    await settle(after);
    expect(smtp.received).toHaveLength(2);
    expect((await reminderEvents(after.eventStore, 'crash-window')).sent).toHaveLength(1);
  });
});

describe('two reminders processes handed the same send', () => {
  const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

  it('mails it once: the second finds the send claimed while the first is still inside it', async () => {
    const smtp = await startSmtp();
    const dir = makeDir();
    const eventStore = createSqliteEventStore({ path: join(dir, 'events.sqlite'), pollIntervalMs: 20 });
    closers.push(() => eventStore.close());
    const readStore = createMemoryReadStore();
    const agreements = await signAgreements(eventStore);
    await schedule(eventStore, 'raced', inMs(3_600_000), agreements, [DESK]);
    const { state } = await loadReview(eventStore, 'raced');
    if (!state.exists) throw new Error('the review should exist');
    const [job] = planReminders(state, WEEK_AND_DAY, clock.now().toISOString());

    // Both processes share one Redis (a namespace of this test's own, removed afterwards).
    const namespace = `test-rem-race-${randomUUID().slice(0, 8)}`;
    const admin = new Redis(REDIS_URL);
    closers.push(async () => {
      const keys = await admin.keys(`${namespace}:*`);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    });
    const mailer = createMailer({ smtpUrl: smtp.url, outboxDir: join(tmpdir(), 'cm-unused-outbox'), from: FROM });
    closers.push(() => mailer.close());
    // The first process stops inside its send, before SMTP, until the test lets it go on: as
    // when BullMQ's lock on a long send lapsed and another worker was handed the job.
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let letGo!: () => void;
    const gate = new Promise<void>((r) => (letGo = r));
    const paused: Mailer = { ...mailer, send: async (m) => (entered(), await gate, mailer.send(m)) };
    const senderOf = (m: Mailer) => {
      const ledger = createRedisSendLedger({ redisUrl: REDIS_URL, namespace });
      closers.push(() => ledger.close());
      return createReminderSender({ eventStore, mailer: m, offsets: WEEK_AND_DAY, now: () => clock.now(), publicUrl: null, logger, ledger });
    };
    const first = senderOf(paused);
    const second = senderOf(mailer);

    const firstSend = first.send(job!);
    await inside;
    await expect(second.send(job!)).rejects.toBeInstanceOf(SendInProgressError);
    letGo();
    expect(await firstSend).toBe('sent');
    // The second's retry finds it sent and only records (a no-op: it is recorded already).
    expect(await second.send(job!)).toBe('sent');

    expect(smtp.received).toHaveLength(1);
    const { sent } = await reminderEvents(eventStore, 'raced');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.messageId).toBe(smtp.received[0]!.mail.messageId);
  });
});
