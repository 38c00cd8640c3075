// Ids for resources created without one: readable (from the title) and unique (a random tail).
import { randomBytes } from 'node:crypto';

export function idFromTitle(title: string, maxPrefix = 48): string {
  const base = title
    .normalize('NFD')
    .replace(/\p{Diacritic}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, maxPrefix)
    .replace(/-+$/g, '');
  const tail = randomBytes(4).toString('hex').slice(0, 6);
  return base.length >= 1 && /^[a-z0-9]/.test(base) ? `${base}-${tail}` : `id-${tail}`;
}
