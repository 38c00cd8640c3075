// What the API shows of a document, as of an instant: status, overdue and next review are
// derived here, against the instant asked about.
import {
  terminationAt, DEFAULT_NOTICE_PERIOD_MONTHS, awaitingRatification, deriveLifecycle, milestoneProgress,
  agreementProgress, agreementStatusReason, commitmentCounts, deriveAgreementStatus, isDueByMeeting, isOverdue,
  type CommitmentState, type ExistingAgreement, type ExistingReview,
} from '@cm/domain';
import type { AgreementDoc, ReviewDoc, ReviewRef } from './documents.js';

export function commitmentView(c: CommitmentState, asOf: string) {
  return {
    id: c.id,
    agreementId: c.agreementId,
    title: c.title,
    description: c.description,
    responsible: c.responsible,
    /** null while it follows a rule whose event has not happened (see dueRule). */
    dueDate: c.dueDate,
    originalDueDate: c.originalDueDate,
    /** `{relativeTo, days | months}` when the due date counts from an agreement's event; null for a fixed date. */
    dueRule: c.dueRule ?? null,
    status: c.status,
    overdue: isOverdue(c, asOf),
    progress: c.progress,
    lastUpdateAt: c.lastUpdateAt,
    implementedAt: c.implementedAt,
    cancelledAt: c.cancelledAt,
    cancellationReason: c.cancellationReason,
    delays: c.delays,
    /** Steps with a weight each; status scheduled until met, partially_met or not_met is recorded. */
    milestones: c.milestones ?? [],
    /** Progress from the milestones' weights (met: whole, partially_met: half); null without milestones. */
    milestoneProgress: milestoneProgress(c.milestones),
  };
}
export type CommitmentView = ReturnType<typeof commitmentView>;

function nextReviewAt(reviews: readonly ReviewRef[], asOf: string): string | null {
  let next: string | null = null;
  for (const r of reviews) if (r.status === 'scheduled' && r.scheduledFor > asOf && (next === null || r.scheduledFor < next)) next = r.scheduledFor;
  return next;
}

export type AgreementLike = Pick<AgreementDoc, 'agreement' | 'revision' | 'updatedAt' | 'reviews'>;

export function agreementSummary(doc: AgreementLike, asOf: string) {
  const a: ExistingAgreement = doc.agreement;
  return {
    id: a.id,
    title: a.title,
    kind: a.kind,
    sector: a.sector,
    parties: a.parties,
    signedAt: a.signedAt,
    session: a.session,
    status: deriveAgreementStatus(a, asOf),
    /** Where it stands as a treaty: signed, provisionally_applied, in_force, suspended, terminated, expired. */
    lifecycle: deriveLifecycle(a, asOf),
    /** Why the status is what it is ("delayed: 1 overdue: ... (joint-lab)"). */
    statusReason: agreementStatusReason(a, asOf),
    progress: agreementProgress(a.commitments),
    commitmentCounts: commitmentCounts(a.commitments, asOf),
    nextReviewAt: nextReviewAt(doc.reviews, asOf),
    lastReviewedAt: a.lastReviewedAt,
    revision: doc.revision,
    updatedAt: doc.updatedAt,
  };
}
export type AgreementSummary = ReturnType<typeof agreementSummary>;

export function agreementDetail(doc: AgreementLike, asOf: string) {
  const a = doc.agreement;
  return {
    ...agreementSummary(doc, asOf),
    summary: a.summary,
    terminated: terminationAt(a, asOf),
    /** One party's notice of denunciation: in force until effectiveAt, terminated from then on. */
    denunciation: a.denunciation ?? null,
    noticePeriodMonths: a.noticePeriodMonths ?? DEFAULT_NOTICE_PERIOD_MONTHS,
    /** How entry into force is established: on_last_ratification, on_signature or explicit. */
    entryIntoForceMode: a.entryIntoForceMode ?? 'on_signature',
    /** Each party's notified ratification, in the order notified. */
    ratifications: a.ratifications ?? [],
    /** Parties that have still to ratify while the agreement is not in force. */
    awaitingRatification: awaitingRatification(a, asOf),
    /** `{date, derived}` once in force (derived: from the last ratification or the signature); null before. */
    entryIntoForce: a.entryIntoForce ?? null,
    provisionalApplication: a.provisionalApplication ?? null,
    suspension: a.suspension ?? null,
    expiry: a.expiry ?? null,
    lastAssessments: a.lastAssessments,
    commitments: a.commitments.map((c) => commitmentView(c, asOf)),
    reviews: doc.reviews.map((r) => ({ id: r.id, title: r.title, scheduledFor: r.scheduledFor, status: r.status })),
  };
}
export type AgreementDetail = ReturnType<typeof agreementDetail>;

export function reviewView(doc: Pick<ReviewDoc, 'review' | 'revision' | 'updatedAt'>) {
  const r: ExistingReview = doc.review;
  return {
    id: r.id,
    title: r.title,
    scheduledFor: r.scheduledFor,
    status: r.status,
    agreementIds: r.agreementIds,
    attendees: r.attendees,
    location: r.location,
    heldAt: r.heldAt,
    summary: r.summary,
    cancellationReason: r.cancellationReason,
    /** What one side of this joint review asked for and the other has still to confirm. */
    pendingProposals: [
      ...(r.pendingCancellation ? [{ kind: 'cancellation' as const, ...r.pendingCancellation }] : []),
      ...(r.pendingOutcome ? [{ kind: 'outcome' as const, ...r.pendingOutcome }] : []),
    ],
    sequence: r.sequence,
    revision: doc.revision,
    updatedAt: doc.updatedAt,
  };
}
export type ReviewView = ReturnType<typeof reviewView>;

/** The agenda of a review: each agreement in scope with what is delayed, overdue or due before the meeting. */
export function reviewAgenda(review: ExistingReview, agreements: ReadonlyMap<string, Pick<AgreementDoc, 'agreement'>>, asOf: string) {
  return review.agreementIds.flatMap((id) => {
    const doc = agreements.get(id);
    if (!doc) return [];
    const a = doc.agreement;
    const commitments = a.commitments
      .filter((c) => c.status !== 'implemented' && c.status !== 'cancelled')
      .filter((c) => c.status === 'delayed' || isOverdue(c, asOf) || isDueByMeeting(c, review.scheduledFor))
      .map((c) => commitmentView(c, asOf));
    return [{ agreementId: a.id, title: a.title, status: deriveAgreementStatus(a, asOf), progress: agreementProgress(a.commitments), commitments }];
  });
}

/**
 * A review with its agenda and reminders, as of an instant: the live read passes the read
 * models' documents, a time-travel read passes documents folded from the log to the same point.
 */
export function reviewDetail(
  doc: Pick<ReviewDoc, 'review' | 'revision' | 'updatedAt'>,
  agreements: ReadonlyMap<string, Pick<AgreementDoc, 'agreement'>>,
  asOf: string,
) {
  return {
    ...reviewView(doc),
    agenda: reviewAgenda(doc.review, agreements, asOf),
    reminders: doc.review.reminders.map((r) => ({ offset: r.offset, email: r.email, scheduledFor: r.scheduledFor, sentAt: r.sentAt, ...(r.covers ? { covers: r.covers } : {}) })),
    reminderFailures: (doc.review.reminderFailures ?? []).map((f) => ({ ...f })),
  };
}
export type ReviewDetail = ReturnType<typeof reviewDetail>;
