// A real SMTP server (smtp-server) on 127.0.0.1 at a free port, for the reminders' tests: every
// accepted message parsed with mailparser, and refusals on demand. Test-only (not exported from
// the package's index).
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerError } from 'smtp-server';

export type ReceivedMail = { rcpt: string[]; mail: ParsedMail; at: number };

/**
 * `refuse(n)` decides, for the n-th message offered (1-based, counting refused ones), whether to
 * answer its DATA with 451 instead of accepting it.
 */
export async function startSmtpServer(options: { refuse?: (attempt: number) => boolean } = {}) {
  const received: ReceivedMail[] = [];
  const offered: number[] = [];
  const server = new SMTPServer({
    authOptional: true,
    // No TLS on loopback: the default certificate is self-signed and the client would refuse it.
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        offered.push(Date.now());
        if (options.refuse?.(offered.length)) {
          const err: SMTPServerError = new Error('Greylisted, try again later');
          err.responseCode = 451;
          callback(err);
          return;
        }
        const at = Date.now();
        // Accepted only once parsed and kept: when the client hears 250, `received` has the mail.
        simpleParser(Buffer.concat(chunks)).then(
          (mail) => {
            received.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), mail, at });
            callback();
          },
          (err: Error) => callback(err),
        );
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    /** When each message was offered (accepted or refused). */
    offered,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
export type SmtpTestServer = Awaited<ReturnType<typeof startSmtpServer>>;
