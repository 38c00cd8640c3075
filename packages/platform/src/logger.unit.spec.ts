import { describe, expect, it } from 'vitest';
import { createLogger, maskEmails } from './logger';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (s: string) => void lines.push(s) } };
}

describe('the logger', () => {
  it('masks e-mail addresses wherever they appear in a line, plain or percent-encoded', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    logger.info({ attendees: ['maria.perez@mppre.gob.ve'], url: '/v1/reviews.ics?attendee=ivan.petrov%40mid.ru' }, 'reminder sent to anna@example.org');
    const line = out.lines.join('');
    expect(line).not.toContain('maria.perez@');
    expect(line).not.toContain('ivan.petrov');
    expect(line).not.toContain('anna@');
    expect(line).toContain('m***@mppre.gob.ve');
    expect(line).toContain('i***%40mid.ru');
    expect(JSON.parse(line).msg).toBe('reminder sent to a***@example.org');
  });

  it('never writes the Authorization header or a secret', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    logger.info({ req: { headers: { authorization: 'Bearer cm_topsecret' } }, key: { secret: 'cm_other' } }, 'incoming request');
    const line = out.lines.join('');
    expect(line).not.toContain('cm_topsecret');
    expect(line).not.toContain('cm_other');
    expect(line).toContain('[redacted]');
  });

  it('leaves lines without addresses alone', () => {
    expect(maskEmails('agreement health-2025 at revision 3')).toBe('agreement health-2025 at revision 3');
    expect(maskEmails('@scope/pkg and user@localhost')).toBe('@scope/pkg and user@localhost');
  });
});
