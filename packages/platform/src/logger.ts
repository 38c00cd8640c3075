// The one root logger of a process; parts take `logger.child({ component })`.
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.secret',
];

export function createLogger(options: { level: string; name?: string; fd?: number }): Logger {
  const settings = {
    level: options.level,
    name: options.name ?? 'commitment-monitor',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  // A command that prints its own output on stdout logs to stderr (fd 2) instead.
  return options.fd === undefined ? pino(settings) : pino(settings, pino.destination({ fd: options.fd, sync: true }));
}
export type { Logger } from 'pino';
