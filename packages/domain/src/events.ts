// Every event of the ledger, past tense. Payloads hold what the command said; envelope
// fields (ids, actor, times, revision) live in the event store's metadata, not here.
import { z } from 'zod';
import {
  agreementKind, attendee, dueRule, entryIntoForceMode, milestoneStatus, isoDate, instant, party, rating, responsible, sector, session, slug, text, url,
} from './primitives.js';

const commitmentRef = { commitmentId: slug };

export const agreementSigned = z.object({
  agreementId: slug,
  title: text(300),
  kind: agreementKind,
  sector,
  parties: z.array(party),
  signedAt: isoDate,
  session: session.optional(),
  summary: text(4000).optional(),
  /** Months between one party's denunciation and its effect; absent: DEFAULT_NOTICE_PERIOD_MONTHS. */
  noticePeriodMonths: z.number().int().min(0).max(120).optional(),
  /** How entry into force is established; absent (agreements recorded before it existed): on_signature. */
  entryIntoForce: entryIntoForceMode.optional(),
});
export const commitmentAdded = z.object({
  agreementId: slug,
  commitmentId: slug,
  title: text(300),
  description: text(4000).optional(),
  /** Absent when the date follows a rule (dueRule) whose event has not happened yet. */
  dueDate: isoDate.optional(),
  dueRule: dueRule.optional(),
  responsible,
});
export const progressReported = z.object({
  ...commitmentRef,
  percent: z.number().int().min(0).max(100),
  note: text(4000).optional(),
  evidenceUrl: url.optional(),
});
export const commitmentImplemented = z.object({
  ...commitmentRef,
  note: text(4000).optional(),
  evidenceUrl: url.optional(),
});
export const commitmentDelayed = z.object({
  ...commitmentRef,
  reason: text(2000),
  previousDueDate: isoDate,
  newDueDate: isoDate,
});
export const commitmentCancelled = z.object({ ...commitmentRef, reason: text(2000) });
/** Corrects the figure of a mistaken ProgressReported, which stays in the history as it was. */
export const progressCorrected = z.object({
  commitmentId: slug,
  correctsRevision: z.number().int().min(0),
  percent: z.number().int().min(0).max(100),
  reason: text(2000),
});
/** Corrects the date of a mistaken CommitmentAdded (its due date) or CommitmentDelayed (its new due date). */
export const dueDateCorrected = z.object({
  commitmentId: slug,
  correctsRevision: z.number().int().min(0),
  dueDate: isoDate,
  reason: text(2000),
});
export const agreementTerminated = z.object({ reason: text(2000) });
/** One party gave notice: the agreement stays in force until effectiveAt, then is terminated. */
export const agreementDenounced = z.object({ byParty: party, reason: text(2000), noticeAt: instant, effectiveAt: instant });
export const denunciationWithdrawn = z.object({ byParty: party, reason: text(2000).optional() });
/** A step of a commitment, with its share (weight, 1-100) of the commitment's progress. */
export const milestoneAdded = z.object({ commitmentId: slug, milestoneId: slug, title: text(300), dueDate: isoDate, weight: z.number().int().min(1).max(100) });
export const milestoneStatusRecorded = z.object({ commitmentId: slug, milestoneId: slug, status: milestoneStatus, note: text(4000).optional(), evidenceUrl: url.optional() });
/** One party notified that it completed its internal procedures (ratification, approval). */
export const ratificationNotified = z.object({ party, date: isoDate });
/** A due date a lifecycle event fixed or moved: from null when it was pending its event. */
const movedDueDate = z.object({ commitmentId: slug, from: isoDate.nullable(), to: isoDate });
/**
 * The agreement entered into force on `date`: recorded, or derived from the last ratification.
 * With `previousDate`, a correction of an earlier record (and `reason` says why). `movedDueDates`
 * lists the relative due dates it fixed or moved.
 */
export const entryIntoForceRecorded = z.object({
  date: isoDate,
  derived: z.boolean().optional(),
  previousDate: isoDate.optional(),
  reason: text(2000).optional(),
  movedDueDates: z.array(movedDueDate),
});
export const provisionalApplicationStarted = z.object({ date: isoDate, reason: text(2000).optional() });
export const agreementSuspended = z.object({ date: isoDate, reason: text(2000) });
export const agreementResumed = z.object({ date: isoDate, reason: text(2000).optional() });
export const agreementExpired = z.object({ date: isoDate, reason: text(2000).optional() });
export const assessment = z.object({
  agreementId: slug,
  commitmentId: slug.optional(),
  rating,
  note: text(2000).optional(),
});
export const agreementReviewed = z.object({
  reviewId: slug,
  heldAt: instant,
  assessments: z.array(assessment),
});

export const reviewScheduled = z.object({
  reviewId: slug,
  title: text(300),
  scheduledFor: instant,
  agreementIds: z.array(slug),
  attendees: z.array(attendee),
  location: text(300).optional(),
});
export const reviewRescheduled = z.object({
  previousScheduledFor: instant,
  scheduledFor: instant,
  reason: text(2000).optional(),
});
export const reviewCancelled = z.object({ reason: text(2000) });
/** Some of a joint review's parties ask to cancel it; it is cancelled when the others confirm. */
export const reviewCancellationProposed = z.object({ byParties: z.array(party), reason: text(2000) });
/** Some of a joint review's parties propose its outcome; it is held when the others confirm. */
export const reviewOutcomeProposed = z.object({
  byParties: z.array(party),
  heldAt: instant,
  summary: text(8000).optional(),
  assessments: z.array(assessment),
});
export const reviewHeld = z.object({
  heldAt: instant,
  summary: text(8000).optional(),
  assessments: z.array(assessment),
});
export const reminderSent = z.object({
  scheduledFor: instant,
  offset: z.string(),
  email: z.string(),
  sentAt: instant,
  /** Offsets this one e-mail stands for, when several were already due and collapsed into it. */
  covers: z.array(z.string()).optional(),
  messageId: z.string().optional(),
});
export const reminderFailed = z.object({
  scheduledFor: instant,
  offset: z.string(),
  email: z.string(),
  failedAt: instant,
  attempts: z.number().int(),
  error: z.string(),
});

const ev = <T extends string, S extends z.ZodType>(type: T, data: S) =>
  z.object({ type: z.literal(type), data });

export const agreementEvent = z.discriminatedUnion('type', [
  ev('AgreementSigned', agreementSigned),
  ev('CommitmentAdded', commitmentAdded),
  ev('ProgressReported', progressReported),
  ev('CommitmentImplemented', commitmentImplemented),
  ev('CommitmentDelayed', commitmentDelayed),
  ev('CommitmentCancelled', commitmentCancelled),
  ev('ProgressCorrected', progressCorrected),
  ev('DueDateCorrected', dueDateCorrected),
  ev('AgreementTerminated', agreementTerminated),
  ev('AgreementReviewed', agreementReviewed),
  ev('AgreementDenounced', agreementDenounced),
  ev('DenunciationWithdrawn', denunciationWithdrawn),
  ev('MilestoneAdded', milestoneAdded),
  ev('MilestoneStatusRecorded', milestoneStatusRecorded),
  ev('RatificationNotified', ratificationNotified),
  ev('EntryIntoForceRecorded', entryIntoForceRecorded),
  ev('ProvisionalApplicationStarted', provisionalApplicationStarted),
  ev('AgreementSuspended', agreementSuspended),
  ev('AgreementResumed', agreementResumed),
  ev('AgreementExpired', agreementExpired),
]);
export const reviewEvent = z.discriminatedUnion('type', [
  ev('ReviewScheduled', reviewScheduled),
  ev('ReviewRescheduled', reviewRescheduled),
  ev('ReviewCancelled', reviewCancelled),
  ev('ReviewHeld', reviewHeld),
  ev('ReviewCancellationProposed', reviewCancellationProposed),
  ev('ReviewOutcomeProposed', reviewOutcomeProposed),
  ev('ReminderSent', reminderSent),
  ev('ReminderFailed', reminderFailed),
]);

export type AgreementEvent = z.infer<typeof agreementEvent>;
export type ReviewEvent = z.infer<typeof reviewEvent>;
export type DomainEvent = AgreementEvent | ReviewEvent;
export type Assessment = z.infer<typeof assessment>;

/** An event as a decider's evolve sees it: the payload plus when it happened in the world. */
export type Timed<E> = E & { occurredAt: string };

export const AGREEMENT_EVENT_TYPES = new Set<string>(agreementEvent.options.map((o) => o.shape.type.value));
export const REVIEW_EVENT_TYPES = new Set<string>(reviewEvent.options.map((o) => o.shape.type.value));

export const agreementStream = (id: string) => `agreement-${id}`;
export const reviewStream = (id: string) => `review-${id}`;

export function parseStreamName(stream: string): { kind: 'agreement' | 'review'; id: string } | null {
  const m = /^(agreement|review)-(.+)$/.exec(stream);
  return m ? { kind: m[1] as 'agreement' | 'review', id: m[2]! } : null;
}
