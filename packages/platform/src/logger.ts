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

// local@domain, also percent-encoded (%40) as in query strings.
const EMAIL = /[A-Za-z0-9._%+-]+(@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})/g;

/** `maria.perez@mppre.gob.ve` -> `m***@mppre.gob.ve`: enough to tell who it was about, not the address. */
export const maskEmails = (line: string) => line.replace(EMAIL, (_m, at: string, domain: string) => `${_m[0]}***${at}${domain}`);

function masking(destination: DestinationStream): DestinationStream {
  return { write: (line: string) => destination.write(line.includes('@') || line.includes('%40') ? maskEmails(line) : line) };
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
