// The Mailer port and its two adapters: SMTP through nodemailer when SMTP_URL is set, and
// `.eml` files in an outbox folder when it is not (development, demos, CI without a relay).
// Retrying is the caller's business: a send either resolves with the Message-ID or rejects
// with nodemailer's error (its `responseCode`, e.g. 451, tells transient from permanent).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createTransport } from 'nodemailer';
import SMTPTransport from 'nodemailer/lib/smtp-transport';

export type MailMessage = {
  to: string;
  toName?: string | undefined;
  subject: string;
  text: string;
  html: string;
  headers?: Record<string, string> | undefined;
  /**
   * Deterministic Message-ID (`<local@domain>`; brackets added when missing). A retried send
   * carries the same one, so a duplicate that slipped through is recognisable downstream.
   */
  messageId?: string | undefined;
};

export type Mailer = {
  send(message: MailMessage): Promise<{ messageId: string }>;
  close(): Promise<void>;
};

export type MailerConfig = {
  /** `smtp://` or `smtps://` URL; null writes `.eml` files to `outboxDir` instead. */
  smtpUrl: string | null;
  outboxDir: string;
  /** The From header, e.g. `Commitment monitor <monitor@example.org>`. */
  from: string;
  /** Clock for outbox file names; the composition root may pin it. */
  now?: (() => Date) | undefined;
};

// Long enough for a slow relay, short enough that a hung one frees the worker for a retry.
const SMTP_TIMEOUT_MS = 10_000;

function angleMessageId(id: string): string {
  const bare = id.trim().replace(/^<|>$/g, '');
  return `<${bare}>`;
}

// Commands refuse control characters in names and titles, but events recorded before they did
// may hold some; in a header a line break or NUL makes parsers reject the whole message.
// eslint-disable-next-line no-control-regex -- the point is to match control characters
const HEADER_CONTROLS = /[\u0000-\u001F\u007F]+/g;
const headerText = (value: string) => value.replace(HEADER_CONTROLS, ' ').trim();

function mailOptions(from: string, message: MailMessage) {
  const toName = message.toName ? headerText(message.toName) : '';
  return {
    from,
    to: toName ? { name: toName, address: message.to } : message.to,
    subject: headerText(message.subject),
    text: message.text,
    html: message.html,
    ...(message.headers ? { headers: message.headers } : {}),
    ...(message.messageId ? { messageId: angleMessageId(message.messageId) } : {}),
  };
}

/** `<ISO timestamp>-<messageId>.eml`, with only characters that are safe in a file name on any system. */
export function outboxFileName(at: Date, messageId: string): string {
  // Colons are not allowed in Windows file names, and the outbox may be opened from one.
  const stamp = at.toISOString().replace(/:/g, '-');
  const id = messageId.replace(/^<|>$/g, '').replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 120);
  return `${stamp}-${id}.eml`;
}

function createSmtpMailer(smtpUrl: string, from: string): Mailer {
  // SMTPTransport directly rather than createTransport(url): a `?pool=true` in the URL cannot
  // turn pooling on. One connection per send keeps each failure tied to one message.
  const transport = createTransport(
    new SMTPTransport({
      url: smtpUrl,
      connectionTimeout: SMTP_TIMEOUT_MS,
      greetingTimeout: SMTP_TIMEOUT_MS,
      socketTimeout: SMTP_TIMEOUT_MS,
    }),
  );
  return {
    async send(message) {
      const info = await transport.sendMail(mailOptions(from, message));
      return { messageId: info.messageId };
    },
    async close() {
      transport.close();
    },
  };
}

function createOutboxMailer(outboxDir: string, from: string, now: () => Date): Mailer {
  // The stream transport composes exactly what SMTP would carry (headers, both parts, CRLF).
  const transport = createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    async send(message) {
      // On every send, not once: cheap, and a folder removed while running comes back.
      await mkdir(outboxDir, { recursive: true });
      const info = await transport.sendMail(mailOptions(from, message));
      const file = path.join(outboxDir, outboxFileName(now(), info.messageId));
      // Write then rename, so whoever watches the outbox never reads a half-written message.
      const partial = `${file}.partial`;
      await writeFile(partial, info.message as Buffer);
      await rename(partial, file);
      return { messageId: info.messageId };
    },
    async close() {
      transport.close();
    },
  };
}

export function createMailer(config: MailerConfig): Mailer {
  return config.smtpUrl
    ? createSmtpMailer(config.smtpUrl, config.from)
    : createOutboxMailer(config.outboxDir, config.from, config.now ?? (() => new Date()));
}
