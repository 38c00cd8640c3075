// Ids for resources created without one: readable (from the title) and unique (a random tail).
import { createHash, randomBytes } from 'node:crypto';

/**
 * With a seed (the request's Idempotency-Key scope) the tail is derived from it, so a retried
 * request names the same resource and its repeated append is recognised as a repeat.
 */
export function idFromTitle(title: string, maxPrefix = 48, seed: string | null = null): string {
  const base = title
    .normalize('NFD')
    .replace(/\p{Diacritic}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxPrefix)
    .replace(/-+$/g, '');
  const tail = seed ? createHash('sha256').update(seed).digest('hex').slice(0, 6) : randomBytes(4).toString('hex').slice(0, 6);
  return base.length >= 1 && /^[a-z0-9]/.test(base) ? `${base}-${tail}` : `id-${tail}`;
}
