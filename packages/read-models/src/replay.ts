// Replaying one stream to a point in time, pure: which stored events are in force at an
// instant of the world (`effectiveAt`), and folding a chosen subset of a stream into state.
// The API's time-travel reads (`asOf`, `revision`, `effectiveAt`) and `explain` stand on these.
import {
  AGREEMENT_EVENT_TYPES, REVIEW_EVENT_TYPES, evolveAgreement, evolveReview, initialAgreementState, initialReviewState,
  type AgreementEvent, type AgreementState, type ReviewEvent, type ReviewState,
} from '@cm/domain';
import { toTimed, type StoredEvent } from '@cm/event-store';


/** The revision a correction event points at, if the event is one (any event type whose data says `correctsRevision`). */
function correctedRevision(e: StoredEvent): number | null {
  const target = (e.data as { correctsRevision?: unknown } | null)?.correctsRevision;
  return typeof target === 'number' ? target : null;
}

/**
 * The events of one stream that were true in the world at `effectiveAt`, as known now, in the
 * order they happened: those whose occurredAt is at or before it, ordered by occurredAt (stream
 * order breaking ties), so a report recorded late but dated earlier does not override one that
 * happened after it. A correction is in force exactly when the event it corrects is, whatever
 * its own occurredAt, and takes that event's place in the order: it says what that event should
 * have said, so "as known now" shows the corrected figure at every instant the mistaken one would.
 */
export function effectiveEvents(events: readonly StoredEvent[], effectiveAt: string): StoredEvent[] {
  const limit = Date.parse(effectiveAt);
  // Sort key of each event in force: [when it happened, revision, its own revision for a correction].
  const keys = new Map<number, [number, number, number]>();
  const out: StoredEvent[] = [];
  for (const e of events) {
    const target = correctedRevision(e);
    const targetKey = target !== null ? keys.get(target) : undefined;
    if (target !== null && !targetKey) continue;
    const occurred = Date.parse(e.metadata.occurredAt);
    if (target === null && occurred > limit) continue;
    keys.set(e.revision, targetKey ? [targetKey[0], targetKey[1], e.revision] : [occurred, e.revision, -1]);
    out.push(e);
  }
  const keyOf = (e: StoredEvent) => keys.get(e.revision)!;
  return out.sort((a, b) => {
    const [x, y] = [keyOf(a), keyOf(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
}

/**
 * Folds agreement events, which may skip revisions (an `effectiveAt` selection). The domain's
 * evolve numbers events by counting them (`applied`), and corrections name their target by
 * revision, so before each event the count is set to the event's true stream revision: a
 * correction then finds the event it points at even when earlier events were left out.
 */
export function foldAgreementEvents(events: readonly StoredEvent[]): AgreementState {
  let state = initialAgreementState();
  for (const e of events) {
    if (!AGREEMENT_EVENT_TYPES.has(e.type)) continue;
    if (state.exists && state.applied !== e.revision) state = { ...state, applied: e.revision };
    state = evolveAgreement(state, toTimed<AgreementEvent>(e));
  }
  return state;
}

export function foldReviewEvents(events: readonly StoredEvent[]): ReviewState {
  let state = initialReviewState();
  for (const e of events) if (REVIEW_EVENT_TYPES.has(e.type)) state = evolveReview(state, toTimed<ReviewEvent>(e));
  return state;
}
