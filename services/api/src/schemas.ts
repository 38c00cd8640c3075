// HTTP bodies and parameters, built from the domain's zod primitives.
import { z } from 'zod';
import { agreementKind, assessment, attendee, dueRule, email, entryIntoForceMode, milestoneStatus, instant, isoDate, party, responsible, sector, multilineText, plainText, session, slug, url } from '@cm/domain';

const occurredAt = instant.optional().describe(
  'When it happened in the world (default: now). Never in the future, nor before the agreement was signed (its signing day in the earliest time zone) or, on a commitment, before it was added.',
);

/** A fixed date, or a rule counting from an agreement's event (only entry_into_force today). */
export const dueDateInput = z
  .union([isoDate, dueRule], { error: 'must be a date YYYY-MM-DD or a rule {"relativeTo": "entry_into_force", "days" or "months": n}' })
  .describe('A date YYYY-MM-DD, or `{ "relativeTo": "entry_into_force", "days": 90 }` (or `"months"`): the view then shows `dueRule` and `dueDate: null` until the agreement enters into force');

export const commitmentInput = z.strictObject({
  id: slug.optional().describe('Generated from the title when omitted'),
  title: plainText(300),
  description: multilineText(4000).optional(),
  dueDate: dueDateInput,
  responsible,
});

export const createAgreementBody = z.strictObject({
  id: slug.optional().describe('Generated from the title when omitted'),
  title: plainText(300),
  kind: agreementKind,
  sector,
  parties: z.array(party).min(2, 'must name at least two parties').max(50),
  signedAt: isoDate,
  session: session.optional(),
  summary: multilineText(4000).optional(),
  noticePeriodMonths: z.number().int('must be a whole number').min(0).max(120).optional()
    .describe('Months between one party\'s denunciation and its effect (default 6)'),
  entryIntoForce: entryIntoForceMode.optional().describe(
    'How it enters into force (default on_last_ratification): when the last party notifies its ratification (on the latest ratification date), on its signature, or only when recorded (explicit)',
  ),
  commitments: z.array(commitmentInput).max(500).optional(),
  occurredAt,
});

export const addCommitmentBody = commitmentInput.extend({ occurredAt });
export const progressBody = z.strictObject({
  percent: z.number().int('must be a whole number').min(0).max(100),
  note: multilineText(4000).optional(),
  evidenceUrl: url.optional(),
  occurredAt,
});
export const implementationBody = z.strictObject({ note: multilineText(4000).optional(), evidenceUrl: url.optional(), occurredAt });
export const delayBody = z.strictObject({ reason: multilineText(2000), newDueDate: isoDate, occurredAt });
export const reasonBody = z.strictObject({ reason: multilineText(2000), occurredAt });
export const optionalReasonBody = z.strictObject({ reason: multilineText(2000).optional(), occurredAt });
export const ratificationBody = z.strictObject({
  party: party.describe("The party that notified completing its internal procedures (an editor: one of its key's parties)"),
  date: isoDate.describe('The day of the notification: not before the signing, not in the future'),
  occurredAt,
});
const lifecycleDate = isoDate.describe('The day it took effect: not before the signing, not in the future');
export const entryIntoForceBody = z.strictObject({
  date: lifecycleDate,
  reason: multilineText(2000).optional().describe('Required to correct an entry into force already recorded; the history keeps it with the due dates it moved'),
  occurredAt,
});
export const lifecycleBody = z.strictObject({ date: lifecycleDate, reason: multilineText(2000).optional(), occurredAt });
export const suspensionBody = z.strictObject({ date: lifecycleDate, reason: multilineText(2000), occurredAt });
export const milestoneBody = z.strictObject({
  id: slug,
  title: plainText(300),
  dueDate: isoDate,
  weight: z.number().int('must be a whole number').min(1).max(100).describe("Its share of the commitment's progress; the milestones of one commitment weigh 100 at most"),
  occurredAt,
});
export const milestoneStatusBody = z.strictObject({
  status: milestoneStatus.describe('OCDS milestone statuses: met, partially_met (counts half its weight), not_met'),
  note: multilineText(4000).optional(),
  evidenceUrl: url.optional(),
  occurredAt,
});
export const milestoneParams = z.object({ id: slug, cid: slug, mid: slug });
export const emptyCommandBody = z.strictObject({ occurredAt });

export const agreementParams = z.object({ id: slug });
export const commitmentParams = z.object({ id: slug, cid: slug });

const position = z.string().regex(/^\d{1,20}$/, 'must be a position returned by a command');
export const readQuery = z.object({ after: position.optional().describe('Answer only once the read models include this position') });

// The three kinds of time a single agreement or review can be read at. At most one per request
// (checked by the route, which names them all in its 400).
const timeViewParams = {
  asOf: instant.optional().describe(
    'Transaction time: what the service said at this instant, folding only the events recorded (recordedAt) up to it. ' +
    'Status and overdue are computed against it. An instant in the future means now.',
  ),
  revision: z.string().regex(/^\d{1,15}$/, 'must be a whole number from 0').transform(Number).optional().describe(
    "The state right after this revision of the resource's own stream (0 is its first event). Status and overdue are " +
    'computed against the recordedAt of that event, so the answer is what the service showed once it was written. 404 beyond the head.',
  ),
  effectiveAt: instant.optional().describe(
    'Valid time: what was true in the world at this instant, as known now. Folds, in stream order, the events whose ' +
    'occurredAt is at or before it, whenever they were recorded, so a backdated report shows; a correction counts ' +
    'exactly when the event it corrects does. Status and overdue are computed against it. An instant in the future means now.',
  ),
};
export const timeViewNames = Object.keys(timeViewParams) as (keyof typeof timeViewParams)[];
export const agreementQuery = readQuery.extend(timeViewParams);
export const reviewQuery = readQuery.extend(timeViewParams);

export const historyQuery = readQuery.extend({
  fromRevision: z.coerce.number().int().min(0).default(0).describe('The first revision to list'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('How many events to list at most (1-1000)'),
});

export const historyEvent = z.object({
  revision: z.number().int().describe("The event's revision in its stream (0 is the first)"),
  position: z.string().describe('The global log position (opaque, increasing)'),
  type: z.string(),
  occurredAt: z.string().describe('When it happened in the world, as the command said (default: when it was recorded)'),
  recordedAt: z.string().describe('When the service recorded it, stamped by the server (milliseconds)'),
  actor: z.string().describe('Who sent the command, from the credentials'),
  correlationId: z.string().optional().describe(
    'Shared by every event one command appended, in every stream (the X-Correlation-Id header when sent, else generated)',
  ),
  data: z.unknown().describe("The event's payload as the command gave it"),
  prevHash: z.string().describe("The hash of the previous event in the stream; for the first, the genesis: sha256('ledger-genesis-v2:' + stream) under scheme 2, 64 zeros under scheme 1"),
  hash: z.string().describe('SHA-256 over the canonical JSON (RFC 8785) of prevHash, type, data and metadata, plus under scheme 2 the scheme, stream, event id and revision'),
  hashScheme: z.number().int().describe('The hash scheme of this event (metadata.hashScheme; 1 when absent)'),
  leafIndex: z.number().int().describe("The event's leaf in the log's Merkle tree (its place in global order, from 0), for GET /v1/log/proofs/inclusion"),
});
export const historyResponse = z.object({
  events: z.array(historyEvent).describe('In stream order'),
  revision: z.number().int().describe("The stream's head revision"),
  nextFromRevision: z.number().int().nullable().describe('fromRevision for the next page; null when this page reaches the head'),
});
export const integrityResponse = z.object({
  valid: z.boolean().describe('Every hash recomputes and links to the one before'),
  events: z.number().int().describe('Events checked'),
  lastHash: z.string().nullable().describe("The stream's last stored hash"),
  firstInvalidRevision: z.number().int().nullable().describe('The first revision whose hash or link does not hold; null when valid'),
  reason: z.string().nullable().describe('Why the stream is invalid (an altered event, a broken link, events missing at the end, a recordedAt column edited); null when valid'),
  schemes: z.record(z.string(), z.number().int()).describe('How many events each hash scheme covers, e.g. {"1": 3, "2": 5}: scheme 1 binds nothing to the stream, scheme 2 binds the stream name, event id and revision'),
});

export const reviewParams = z.object({ id: slug });
export const scheduleReviewBody = z.strictObject({
  id: slug.optional().describe('Generated from the title when omitted'),
  title: plainText(300),
  scheduledFor: instant.describe('A future instant'),
  agreementIds: z.array(slug).min(1, 'must name at least one agreement').max(200),
  attendees: z.array(attendee).min(1, 'must name at least one attendee').max(200),
  location: plainText(300).optional(),
  occurredAt,
});
export const rescheduleBody = z.strictObject({ scheduledFor: instant, reason: multilineText(2000).optional(), occurredAt });
// An assessment as a command gives it: its note is free text of the outcome.
const assessmentInput = assessment.extend({ note: multilineText(2000).optional() });
export const outcomeBody = z.strictObject({
  heldAt: instant.optional().describe('Default: now; never in the future'),
  summary: multilineText(8000).optional(),
  assessments: z.array(assessmentInput).max(1000),
  occurredAt,
});
export const calendarQuery = readQuery.extend({ attendee: email.optional() });
