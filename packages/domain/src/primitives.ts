// Shapes shared by commands, events and the HTTP contract: one zod source for each.
import { z } from 'zod';
import { ISO_3166_ALPHA3 } from './iso3166';

export const SLUG_PATTERN = /^[a-z0-9][a-z0-9-]{2,79}$/;
export const slug = z.string().regex(SLUG_PATTERN, 'must be a slug: [a-z0-9][a-z0-9-]{2,79}');

export const party = z
  .string()
  .regex(/^[A-Z]{3}$/, { message: 'must be an ISO 3166-1 alpha-3 code such as VEN', abort: true })
  .refine((c) => ISO_3166_ALPHA3.has(c), 'must be an assigned ISO 3166-1 alpha-3 code such as VEN (or XKX)');

function isRealDate(s: string): boolean {
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

export const isoDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date YYYY-MM-DD', abort: true })
  .refine(isRealDate, 'must be a real calendar date');

export const instant = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/,
    { message: 'must be an ISO 8601 instant such as 2026-03-01T09:00:00Z', abort: true },
  )
  .refine((s) => {
    const t = Date.parse(s);
    return !Number.isNaN(t) && isRealDate(s.slice(0, 10)) && t > Date.UTC(1900, 0, 1) && t < Date.UTC(9999, 0, 1);
  }, 'must be a real instant');

/** Instants are stored as `toISOString()` (UTC, milliseconds) so they compare as strings. */
export function normalizeInstant(s: string): string {
  return new Date(s).toISOString();
}

export function dateOf(instantIso: string): string {
  return instantIso.slice(0, 10);
}

export const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);

export const agreementKind = z.enum(['agreement', 'protocol', 'memorandum', 'programme', 'contract', 'other']);
export const sector = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{1,39}$/, 'must be a lower-case sector name such as health');

export const commitmentStatus = z.enum(['pending', 'in_progress', 'delayed', 'implemented', 'cancelled']);
export const agreementStatus = z.enum(['signed', 'in_implementation', 'delayed', 'implemented', 'terminated']);
export const reviewStatus = z.enum(['scheduled', 'held', 'cancelled']);
export const rating = z.enum(['on_track', 'at_risk', 'off_track', 'done']);
export const locale = z.enum(['en', 'es', 'ru']);
export const email = z.email('must be an e-mail address').max(254);
export const url = z.url('must be an http(s) URL').max(2000).refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const responsible = z.strictObject({
  party,
  institution: text(200),
});
export const session = z.strictObject({ name: text(120), date: isoDate });
export const attendee = z.strictObject({
  email,
  name: text(200).optional(),
  locale: locale.optional(),
});

export type AgreementKind = z.infer<typeof agreementKind>;
export type CommitmentStatus = z.infer<typeof commitmentStatus>;
export type AgreementStatus = z.infer<typeof agreementStatus>;
export type ReviewStatus = z.infer<typeof reviewStatus>;
export type Rating = z.infer<typeof rating>;
export type Responsible = z.infer<typeof responsible>;
export type Session = z.infer<typeof session>;
export type Attendee = z.infer<typeof attendee>;
export type Locale = z.infer<typeof locale>;
