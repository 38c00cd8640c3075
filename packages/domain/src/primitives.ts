// Shapes shared by commands, events and the HTTP contract: one zod source for each.
import { z } from 'zod';
import { ISO_3166_ALPHA3 } from './iso3166.js';

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

/** Text as events hold it: what a command accepted (see plainText) or, for older events, what it accepted then. */
export const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);

// What no text field of a command may hold: NUL and the other C0 controls, DEL, and UTF-16
// halves without their other half (JSON's "\ud800" decodes to one). They break e-mail headers,
// iCalendar lines and the parsers of whoever reads an export; a free-text note keeps its line
// breaks and tabs.
// eslint-disable-next-line no-control-regex -- the point is to match control characters
const SINGLE_LINE_CONTROLS = /[\u0000-\u001F\u007F]/;
// eslint-disable-next-line no-control-regex -- the point is to match control characters
const MULTI_LINE_CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const wellFormed = <S extends z.ZodString>(schema: S, controls: RegExp, controlsMessage: string) =>
  schema
    .refine((s) => !controls.test(s), controlsMessage)
    .refine((s) => !LONE_SURROGATE.test(s), 'must be valid Unicode text (it holds half of a surrogate pair)');

/** A single-line text field of a command (a title, a name): no control character at all. */
export const plainText = (max: number) => wellFormed(text(max), SINGLE_LINE_CONTROLS, 'must be one line without control characters (tab, line break, NUL, ...)');

/** A free-text note of a command (a description, a reason): line breaks and tabs allowed, no other control character. */
export const multilineText = (max: number) => wellFormed(text(max), MULTI_LINE_CONTROLS, 'must not contain control characters other than line breaks and tabs');

export const agreementKind = z.enum(['agreement', 'protocol', 'memorandum', 'programme', 'contract', 'other']);
export const sector = z
  .string()
  .regex(/^[a-z][a-z0-9_-]{1,39}$/, 'must be a lower-case sector name such as health');

export const commitmentStatus = z.enum(['pending', 'in_progress', 'delayed', 'implemented', 'cancelled']);
export const agreementStatus = z.enum(['signed', 'in_implementation', 'delayed', 'implemented', 'cancelled', 'terminated']);
export const reviewStatus = z.enum(['scheduled', 'held', 'cancelled']);
export const rating = z.enum(['on_track', 'at_risk', 'off_track', 'done']);
export const locale = z.enum(['en', 'es', 'ru']);
export const email = z.email('must be an e-mail address').max(254);
// zod's URL check strips tabs and line breaks from what it returns, so the text as sent is
// checked for control characters first, and kept as sent.
export const url = z
  .string()
  .max(2000)
  .refine((u) => !SINGLE_LINE_CONTROLS.test(u) && !LONE_SURROGATE.test(u), { message: 'must be an http(s) URL without control characters', abort: true })
  .refine((u) => /^https?:\/\/\S/i.test(u) && URL.canParse(u), 'must be an http(s) URL')
  .meta({ format: 'uri' });

export const responsible = z.strictObject({
  party,
  institution: plainText(200),
});
export const session = z.strictObject({ name: plainText(120), date: isoDate });
export const attendee = z.strictObject({
  email,
  name: plainText(200).optional(),
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

/** A milestone's status, as OCDS names them; `scheduled` until one is recorded. */
export const milestoneStatus = z.enum(['met', 'partially_met', 'not_met']);
export type MilestoneStatus = z.infer<typeof milestoneStatus>;

/** Where an agreement stands as a treaty, beside how far its commitments got (its status). */
export const agreementLifecycle = z.enum(['signed', 'provisionally_applied', 'in_force', 'suspended', 'terminated', 'expired']);
export type AgreementLifecycle = z.infer<typeof agreementLifecycle>;
/** How entry into force is established: when the last party ratifies, at signature, or only when recorded. */
export const entryIntoForceMode = z.enum(['on_last_ratification', 'on_signature', 'explicit']);
export type EntryIntoForceMode = z.infer<typeof entryIntoForceMode>;
/** The events a relative due date may count from. */
export const dueRuleEvent = z.enum(['entry_into_force']);
/** A due date counted from an agreement's event: `days` or `months` after it (exactly one). */
export const dueRule = z
  .strictObject({
    relativeTo: dueRuleEvent,
    days: z.number().int('must be a whole number').min(0).max(36500).optional(),
    months: z.number().int('must be a whole number').min(0).max(1200).optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.days === undefined) === (r.months === undefined)) ctx.addIssue({ code: 'custom', path: ['days'], message: 'give exactly one of days or months' });
  });
export type DueRule = z.infer<typeof dueRule>;
