// Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` under the
// secret's bytes (the base64 after `whsec_`). What a receiver checks is in docs/api.md.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{32,}={0,2}$/;

/** A new secret: 32 random bytes in the `whsec_<base64>` form. */
export const generateSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** The receiver's check: one of the space-separated signatures matches (secrets rotate). */
export function verify(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string): boolean {
  const expected = Buffer.from(sign(secret, headers.id, Number(headers.timestamp), body));
  return headers.signature.split(' ').some((s) => {
    const given = Buffer.from(s);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
