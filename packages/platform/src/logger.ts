// The one root logger of a process; parts take `logger.child({ component })`. Secrets never
// reach the log (Authorization, cookies, passwords) and e-mail addresses are masked wherever
// they appear in a line (attendees, URLs such as reviews.ics?attendee=, error messages).
import { pino, type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.secret',
];

// local@domain, also percent-encoded (%40) as in query strings. The local part takes what real
// addresses hold (apostrophes as in o'neil, plus tags, percent-escapes such as %2B, letters of any
// script), but not `/ ? = &`, so a URL before an address stays readable: only the address is
// masked. The domain may be internationalised (letters of any script) or punycode (xn--).
const LOCAL = "[\\p{L}\\p{M}\\p{N}!#$%'*+^_`{|}~.-]+";
const LABEL = '[\\p{L}\\p{M}\\p{N}](?:[\\p{L}\\p{M}\\p{N}-]*[\\p{L}\\p{M}\\p{N}])?';
const TLD = '(?:\\p{L}[\\p{L}\\p{M}]+|xn--[A-Za-z0-9-]+)';
const EMAIL = new RegExp(`(${LOCAL})(@|%40)((?:${LABEL}\\.)+${TLD})(?![\\p{L}\\p{N}-])`, 'giu');

/** `maria.perez@mppre.gob.ve` -> `m***@mppre.gob.ve`: enough to tell who it was about, not the address. */
export const maskEmails = (line: string) =>
  // A local part of asterisks only is a mask already (a URL's password, masked first).
  line.replace(EMAIL, (m, local: string, at: string, domain: string) => (/^\*+$/.test(local) ? m : `${[...local][0]}***${at}${domain}`));

// scheme://user:password@host: the password is replaced, wherever the URL appears (REDIS_URL,
// SMTP_URL, an error message quoting one). The password runs to the last @ of the authority.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/)([^\s:/"'@]*):([^\s/"'?#]+)@/gi;

/** `redis://default:s3cret@cache:6379` -> `redis://default:***@cache:6379`. */
export const maskUrlPasswords = (line: string) => line.replace(URL_PASSWORD, '$1$2:***@');

/** What every log line goes through: passwords in URLs first, then e-mail addresses. */
export function maskLine(line: string): string {
  const unpassworded = line.includes('://') ? maskUrlPasswords(line) : line;
  return unpassworded.includes('@') || unpassworded.includes('%40') ? maskEmails(unpassworded) : unpassworded;
}

function masking(destination: DestinationStream): DestinationStream {
  return { write: (line: string) => destination.write(maskLine(line)) };
}

export function createLogger(options: { level: string; name?: string; fd?: number; destination?: DestinationStream }): Logger {
  const settings = {
    level: options.level,
    name: options.name ?? 'commitment-monitor',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  // A command that prints its own output on stdout logs to stderr (fd 2) instead.
  const destination = options.destination ?? (options.fd === undefined ? pino.destination(1) : pino.destination({ fd: options.fd, sync: true }));
  return pino(settings, masking(destination));
}
export type { Logger } from 'pino';
