// HTTP bodies and parameters, built from the domain's zod primitives.
import { z } from 'zod';
import { agreementKind, assessment, attendee, email, instant, isoDate, party, responsible, sector, session, slug, text, url } from '@cm/domain';

const occurredAt = instant.optional().describe('When it happened in the world (default: now). Never in the future.');

export const commitmentInput = z.strictObject({
  id: slug.optional().describe('Generated from the title when omitted'),
  title: text(300),
  description: text(4000).optional(),
  dueDate: isoDate,
  responsible,
});

export const createAgreementBody = z.strictObject({
  id: slug.optional().describe('Generated from the title when omitted'),
  title: text(300),
  kind: agreementKind,
  sector,
  parties: z.array(party).min(2, 'must name at least two parties').max(50),
  signedAt: isoDate,
  session: session.optional(),
  summary: text(4000).optional(),
  commitments: z.array(commitmentInput).max(500).optional(),
  occurredAt,
});

export const addCommitmentBody = commitmentInput.extend({ occurredAt });
export const progressBody = z.strictObject({
  percent: z.number().int('must be a whole number').min(0).max(100),
  note: text(4000).optional(),
  evidenceUrl: url.optional(),
  occurredAt,
});
export const implementationBody = z.strictObject({ note: text(4000).optional(), evidenceUrl: url.optional(), occurredAt });
export const delayBody = z.strictObject({ reason: text(2000), newDueDate: isoDate, occurredAt });
export const reasonBody = z.strictObject({ reason: text(2000), occurredAt });

export const agreementParams = z.object({ id: slug });
export const commitmentParams = z.object({ id: slug, cid: slug });

const position = z.string().regex(/^\d{1,20}$/, 'must be a position returned by a command');
export const readQuery = z.object({ after: position.optional().describe('Answer only once the read models include this position') });
export const agreementQuery = readQuery.extend({
  asOf: instant.optional().describe('Fold only the events recorded up to this instant'),
});
export const historyQuery = readQuery.extend({
  fromRevision: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const reviewParams = z.object({ id: slug });
export const scheduleReviewBody = z.strictObject({
  id: slug.optional().describe('Generated from the title when omitted'),
  title: text(300),
  scheduledFor: instant.describe('A future instant'),
  agreementIds: z.array(slug).min(1, 'must name at least one agreement').max(200),
  attendees: z.array(attendee).min(1, 'must name at least one attendee').max(200),
  location: text(300).optional(),
  occurredAt,
});
export const rescheduleBody = z.strictObject({ scheduledFor: instant, reason: text(2000).optional(), occurredAt });
export const outcomeBody = z.strictObject({
  heldAt: instant.optional().describe('Default: now; never in the future'),
  summary: text(8000).optional(),
  assessments: z.array(assessment).max(1000),
  occurredAt,
});
export const calendarQuery = readQuery.extend({ attendee: email.optional() });
