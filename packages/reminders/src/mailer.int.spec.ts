// The mailer against a real SMTP server on loopback and a real outbox folder: what a mail
// client would receive, and that a refusal reaches the caller (who retries).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMailer, type MailMessage } from './mailer.js';
import { startSmtpServer } from './testing/smtp-test-server.js';

const FROM = 'Commitment monitor <monitor@example.org>';

const message: MailMessage = {
  to: 'ana@example.org',
  toName: 'Ana Pérez',
  subject: 'Напоминание: CIAN XX — 20 января 2027 г.',
  text: 'Срок: 30 ноября 2026 г.\nMinistry of Health (VEN)\n',
  html: '<p>Срок: <strong>30 ноября 2026 г.</strong></p><p>Ministry of Health (VEN)</p>',
  headers: { 'X-Review-Id': 'cian-xx-prep' },
  messageId: '<0123456789abcdef@commitment-monitor>',
};

const startServer = (opts: { reject?: boolean } = {}) => startSmtpServer(opts.reject ? { refuse: () => true } : {});

function checkParsed(mail: ParsedMail) {
  expect(mail.subject).toBe(message.subject);
  expect(mail.messageId).toBe(message.messageId);
  const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
  expect(to?.value[0]).toMatchObject({ address: 'ana@example.org', name: 'Ana Pérez' });
  expect(mail.from?.value[0]?.address).toBe('monitor@example.org');
  expect(mail.text).toContain('Срок: 30 ноября 2026 г.');
  expect(mail.text).toContain('Ministry of Health (VEN)');
  expect(mail.html).toContain('<strong>30 ноября 2026 г.</strong>');
  expect(mail.headers.get('x-review-id')).toBe('cian-xx-prep');
}

describe('SMTP mailer', () => {
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('delivers one message with both parts, the recipient and the given Message-ID', async () => {
    const srv = (server = await startServer());
    const mailer = createMailer({ smtpUrl: srv.url, outboxDir: '/nonexistent', from: FROM });
    const sent = await mailer.send(message);
    await mailer.close();

    expect(sent.messageId).toBe(message.messageId);
    expect(srv.received).toHaveLength(1);
    const [got] = srv.received;
    expect(got!.rcpt).toEqual(['ana@example.org']);
    checkParsed(got!.mail);
  });

  it('wraps a bare Message-ID in angle brackets, and a retried send carries the same one', async () => {
    const srv = (server = await startServer());
    const mailer = createMailer({ smtpUrl: srv.url, outboxDir: '/nonexistent', from: FROM });
    const again = { ...message, messageId: 'retry-1@commitment-monitor' };
    const first = await mailer.send(again);
    const second = await mailer.send(again);
    await mailer.close();

    expect(first.messageId).toBe('<retry-1@commitment-monitor>');
    expect(second.messageId).toBe(first.messageId);
    expect(srv.received.map((r) => r.mail.messageId)).toEqual(['<retry-1@commitment-monitor>', '<retry-1@commitment-monitor>']);
  });

  it('rejects when the server refuses the message, so the caller can retry', async () => {
    const srv = (server = await startServer({ reject: true }));
    const mailer = createMailer({ smtpUrl: srv.url, outboxDir: '/nonexistent', from: FROM });
    await expect(mailer.send(message)).rejects.toMatchObject({ responseCode: 451 });
    await mailer.close();
    expect(srv.received).toHaveLength(0);
  });

  it('rejects when nothing listens at the address', async () => {
    const gone = await startServer();
    await gone.close();
    const mailer = createMailer({ smtpUrl: gone.url, outboxDir: '/nonexistent', from: FROM });
    await expect(mailer.send(message)).rejects.toMatchObject({ code: 'ESOCKET' });
    await mailer.close();
  });
});

describe('outbox mailer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cm-outbox-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a parseable .eml with both parts, named by time and Message-ID, creating the folder', async () => {
    const outboxDir = path.join(dir, 'data', 'outbox');
    const mailer = createMailer({ smtpUrl: null, outboxDir, from: FROM, now: () => new Date('2027-01-13T09:00:00.000Z') });
    const sent = await mailer.send(message);
    await mailer.close();

    expect(sent.messageId).toBe(message.messageId);
    const files = await readdir(outboxDir);
    expect(files).toEqual(['2027-01-13T09-00-00.000Z-0123456789abcdef@commitment-monitor.eml']);
    const raw = await readFile(path.join(outboxDir, files[0]!));
    expect(raw.includes('\r\n')).toBe(true);
    checkParsed(await simpleParser(raw));
  });

  it('writes a recipient name and a subject recorded with line breaks or NUL as one clean header line each', async () => {
    const mailer = createMailer({ smtpUrl: null, outboxDir: dir, from: FROM });
    await mailer.send({ ...message, toName: 'Ana\r\nBcc: evil@x.org\u0000', subject: 'Review\r\nX-Injected: 1' });
    const [file] = await readdir(dir);
    const raw = await readFile(path.join(dir, file!));
    const mail = await simpleParser(raw);
    const to = Array.isArray(mail.to) ? mail.to[0] : mail.to;
    expect(to?.value).toEqual([{ address: 'ana@example.org', name: 'Ana Bcc: evil@x.org' }]);
    expect(mail.bcc).toBeUndefined();
    expect(mail.subject).toBe('Review X-Injected: 1');
    expect(mail.headers.has('x-injected')).toBe(false);
    expect(raw.includes(0)).toBe(false);
  });

  it('keeps a file name safe whatever the Message-ID holds', async () => {
    const mailer = createMailer({ smtpUrl: null, outboxDir: dir, from: FROM, now: () => new Date('2027-01-13T09:00:00.000Z') });
    await mailer.send({ ...message, messageId: '<../../etc/passwd x@y>' });
    const files = await readdir(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^2027-01-13T09-00-00\.000Z-[A-Za-z0-9._@-]+\.eml$/);
    expect(files[0]).not.toContain('/');
  });

  it('gives each message its own Message-ID when the caller sets none', async () => {
    const mailer = createMailer({ smtpUrl: null, outboxDir: dir, from: FROM });
    const a = await mailer.send({ ...message, messageId: undefined });
    const b = await mailer.send({ ...message, messageId: undefined });
    expect(a.messageId).toMatch(/^<.+@.+>$/);
    expect(a.messageId).not.toBe(b.messageId);
    expect(await readdir(dir)).toHaveLength(2);
  });
});
