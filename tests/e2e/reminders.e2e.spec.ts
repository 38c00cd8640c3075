// Review reminders through the real process (embedded mode: SQLite log, memory read models,
// in-process scheduler) mailing a real smtp-server on loopback run by this test: a review
// scheduled over HTTP gets its due reminders at once, the review's detail lists them, and a
// SIGKILL followed by a restart on the same DATA_DIR sends nothing twice.
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client } from './support/http.js';
import { killAllServices, removeDataDir, startService } from './support/service-process.js';

type Received = { rcpt: string[]; mail: ParsedMail };
const received: Received[] = [];
let smtp: SMTPServer;
let smtpUrl = '';
const dirs: string[] = [];

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    // No TLS on loopback: the default certificate is self-signed and the client would refuse it.
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (mail) => {
          received.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), mail });
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  smtpUrl = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await killAllServices();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  dirs.forEach(removeDataDir);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function countReminderSent(dataDir: string): number {
  const db = new Database(join(dataDir, 'events.sqlite'), { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM events WHERE type = 'ReminderSent'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('review reminders through the real process', () => {
  it('mails each attendee once when a review is scheduled, lists it on the review, and sends nothing again after a SIGKILL', async () => {
    const env = { SMTP_URL: smtpUrl, REMINDER_OFFSETS: '7d,1d', MAIL_FROM: 'Monitor <monitor@example.org>' };
    let service = await startService({ env });
    dirs.push(service.dataDir);
    let api = client(service.url);

    const agreement = await api.post('/v1/agreements', {
      id: 'health-e2e',
      title: 'Health cooperation agreement',
      kind: 'agreement',
      sector: 'health',
      parties: ['VEN', 'RUS'],
      signedAt: '2025-11-28',
      commitments: [
        { id: 'clinics', title: 'Open two clinics', dueDate: '2026-03-31', responsible: { party: 'VEN', institution: 'Ministerio del Poder Popular para la Salud' } },
        { id: 'nurses', title: 'Train nurses', dueDate: '2099-12-31', responsible: { party: 'RUS', institution: 'Sechenov University' } },
      ],
    });
    expect(agreement.status).toBe(201);

    // Two days ahead: the 7d reminder is already due (it goes out at once), the 1d one is not.
    const scheduledFor = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const review = await api.post('/v1/reviews', {
      id: 'cian-e2e',
      title: 'CIAN XX preparatory review',
      scheduledFor,
      agreementIds: ['health-e2e'],
      attendees: [
        { email: 'ana@example.org', name: 'Ana Pérez', locale: 'es' },
        { email: 'desk@example.org' },
      ],
    });
    expect(review.status).toBe(201);

    await until('two mails', () => received.length === 2);
    expect(received.map((r) => r.rcpt[0]).sort()).toEqual(['ana@example.org', 'desk@example.org']);
    const mailTo = (email: string) => received.find((r) => r.rcpt[0] === email)!.mail;
    expect(mailTo('ana@example.org').subject).toMatch(/^Recordatorio: CIAN XX preparatory review el /);
    expect(mailTo('ana@example.org').text).toContain('31 de marzo de 2026');
    expect(mailTo('desk@example.org').subject).toMatch(/^Reminder: CIAN XX preparatory review on /);
    expect(mailTo('desk@example.org').text).toContain('31 March 2026');
    for (const { mail } of received) {
      expect(mail.from?.value[0]?.address).toBe('monitor@example.org');
      expect(mail.text).toContain('Ministerio del Poder Popular para la Salud');
      expect(mail.html).toContain('Open two clinics');
      expect(mail.text).not.toContain('Sechenov University');
    }

    const listed = async () => (await api.get(`/v1/reviews/cian-e2e`)).body.reminders as { offset: string; email: string; sentAt: string }[];
    await until('the reminders on the review', async () => (await listed()).length === 2);
    const reminders = await listed();
    expect(reminders.map((r) => [r.email, r.offset]).sort()).toEqual([['ana@example.org', '7d'], ['desk@example.org', '7d']]);
    for (const r of reminders) expect(Date.parse(r.sentAt)).not.toBeNaN();

    // Killed without warning, then started again on the same data: the start reconciles with
    // the log, which says both went out.
    await service.kill();
    service = await startService({ env, dataDir: service.dataDir });
    api = client(service.url);
    await sleep(3000);
    expect(received).toHaveLength(2);
    expect((await listed()).map((r) => [r.email, r.offset]).sort()).toEqual([['ana@example.org', '7d'], ['desk@example.org', '7d']]);

    expect((await service.stop()).code).toBe(0);
    expect(countReminderSent(service.dataDir)).toBe(2);
    expect(received).toHaveLength(2);
  }, 60_000);
});
