import { describe, expect, it } from 'vitest';
import { createLogger, maskEmails, maskLine, maskUrlPasswords } from './logger.js';

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

  // Real-world shapes: each address must be gone from the line, leaving its first character and domain.
  it.each([
    ["maria.o'neil@mppre.gob.ve", "m***@mppre.gob.ve"],
    ["d'artagnan@example.fr", "d***@example.fr"],
    ['ivan+reviews@mid.ru', 'i***@mid.ru'],
    ['first_last-2@sub.domain.example.org', 'f***@sub.domain.example.org'],
    ['Focal.Point@Example.ORG', 'F***@Example.ORG'],
    ['josé.pérez@cancillería.gob.ve', 'j***@cancillería.gob.ve'],
    ['иван@почта.рф', 'и***@почта.рф'],
    ['user@xn--80a1acny.xn--p1ai', 'u***@xn--80a1acny.xn--p1ai'],
    ['ivan.petrov%40mid.ru', 'i***%40mid.ru'],
    ['ivan%2Breviews%40mid.ru', 'i***%40mid.ru'],
    ['a!#$%*^_`{|}~b@example.org', 'a***@example.org'],
    ['x@example.museum', 'x***@example.museum'],
  ])('masks %s', (address, masked) => {
    const line = maskLine(JSON.stringify({ msg: `reminder sent to ${address}`, url: `/v1/reviews.ics?attendee=${address}` }));
    const local = address.split(/@|%40/)[0]!;
    expect(line).not.toContain(local.length > 1 ? local : `${local}@`);
    expect(JSON.parse(line)).toEqual({ msg: `reminder sent to ${masked}`, url: `/v1/reviews.ics?attendee=${masked}` });
  });

  it('masks the password of any URL, REDIS_URL above all, before it reaches the log', () => {
    expect(maskUrlPasswords('cannot reach Redis at REDIS_URL=redis://default:s3cr3t@cache.internal:6379/0')).toBe('cannot reach Redis at REDIS_URL=redis://default:***@cache.internal:6379/0');
    expect(maskUrlPasswords('rediss://:p%40ss:w0rd@redis.example.org:6380')).toBe('rediss://:***@redis.example.org:6380');
    expect(maskUrlPasswords('smtp://mailer:hunter2@smtp.example.org:587 and redis://localhost:6379')).toBe('smtp://mailer:***@smtp.example.org:587 and redis://localhost:6379');
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.destination });
    logger.fatal({ err: new Error('connect ECONNREFUSED') }, 'cannot reach Redis at REDIS_URL=redis://admin:Tr0ub4dor@redis.gob.ve:6379');
    const line = out.lines.join('');
    expect(line).not.toContain('Tr0ub4dor');
    expect(line).not.toMatch(/admin:T/);
    expect(JSON.parse(line).msg).toBe('cannot reach Redis at REDIS_URL=redis://admin:***@redis.gob.ve:6379');
  });
});

