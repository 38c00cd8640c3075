// The ledger projection, pure: a batch of stored events folded into agreement and review
// documents. The projector loads the documents a batch touches, calls this, and commits the
// result with the checkpoint in one write.
import {
  AGREEMENT_EVENT_TYPES, REVIEW_EVENT_TYPES, evolveAgreement, evolveReview, parseStreamName,
  type AgreementEvent, type ReviewEvent,
} from '@cm/domain';
import { toTimed, type StoredEvent } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc, ReviewRef } from './documents.js';

/** The documents a batch needs, in two rounds: the streams themselves, then agreements in a review's scope. */
export function documentsNeeded(events: readonly StoredEvent[], reviews: ReadonlyMap<string, ReviewDoc>): { agreementIds: Set<string>; reviewIds: Set<string> } {
  const agreementIds = new Set<string>();
  const reviewIds = new Set<string>();
  for (const e of events) {
    const s = parseStreamName(e.stream);
    if (!s) continue;
    if (s.kind === 'agreement') agreementIds.add(s.id);
    else {
      reviewIds.add(s.id);
      if (e.type === 'ReviewScheduled') for (const id of (e.data as { agreementIds: string[] }).agreementIds) agreementIds.add(id);
      for (const id of reviews.get(s.id)?.review.agreementIds ?? []) agreementIds.add(id);
    }
  }
  return { agreementIds, reviewIds };
}

const refOf = (r: ReviewDoc): ReviewRef => ({ id: r.review.id, title: r.review.title, scheduledFor: r.review.scheduledFor, status: r.review.status });

/**
 * Applies events in order to the loaded documents and returns only the documents that changed.
 * An event at or below a document's revision was already applied and is skipped, so replaying a
 * batch after a crash cannot double anything.
 */
export function projectBatch(
  loaded: { agreements: ReadonlyMap<string, AgreementDoc>; reviews: ReadonlyMap<string, ReviewDoc> },
  events: readonly StoredEvent[],
): ProjectionChanges {
  const agreements = new Map(loaded.agreements);
  const reviews = new Map(loaded.reviews);
  const changed: ProjectionChanges = { agreements: new Map(), reviews: new Map() };
  const putAgreement = (d: AgreementDoc) => {
    agreements.set(d.agreement.id, d);
    changed.agreements.set(d.agreement.id, d);
  };

  for (const e of events) {
    const s = parseStreamName(e.stream);
    if (!s) continue;
    const recordedAt = e.metadata.recordedAt;
    if (s.kind === 'agreement' && AGREEMENT_EVENT_TYPES.has(e.type)) {
      const doc = agreements.get(s.id);
      if (doc && e.revision <= doc.revision) continue;
      const timed = toTimed<AgreementEvent>(e);
      const next = evolveAgreement(doc ? doc.agreement : { exists: false }, timed);
      if (!next.exists) continue;
      putAgreement({
        agreement: next,
        revision: e.revision,
        position: e.position,
        createdAt: doc?.createdAt ?? recordedAt,
        updatedAt: recordedAt,
        reviews: doc?.reviews ?? [],
      });
    } else if (s.kind === 'review' && REVIEW_EVENT_TYPES.has(e.type)) {
      const doc = reviews.get(s.id);
      if (doc && e.revision <= doc.revision) continue;
      const timed = toTimed<ReviewEvent>(e);
      const next = evolveReview(doc ? doc.review : { exists: false }, timed);
      if (!next.exists) continue;
      const nextDoc: ReviewDoc = { review: next, revision: e.revision, position: e.position, createdAt: doc?.createdAt ?? recordedAt, updatedAt: recordedAt };
      reviews.set(s.id, nextDoc);
      changed.reviews.set(s.id, nextDoc);
      if (e.type === 'ReminderSent' || e.type === 'ReminderFailed') continue;
      const ref = refOf(nextDoc);
      for (const agreementId of next.agreementIds) {
        const a = agreements.get(agreementId);
        if (!a) continue;
        const others = a.reviews.filter((r) => r.id !== ref.id);
        putAgreement({ ...a, reviews: [...others, ref].sort((x, y) => x.scheduledFor.localeCompare(y.scheduledFor) || x.id.localeCompare(y.id)) });
      }
    }
  }
  return changed;
}
