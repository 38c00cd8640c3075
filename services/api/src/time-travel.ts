// Reading one agreement or one review at a point in time, from the log itself: the read models
// only know "now". Three kinds of time: `asOf` (what the service said then: events recorded by
// the instant), `revision` (a prefix of the resource's own stream) and `effectiveAt` (what was
// true in the world then, as known now: events that occurred by the instant). The routes call
// this only when a view is asked for; the plain GETs stay on the read models.
import { NotFoundError, agreementStream, normalizeInstant, reviewStream } from '@cm/domain';
import type { EventStore, StoredEvent } from '@cm/event-store';
import {
  agreementDetail, effectiveEvents, foldAgreementEvents, foldReviewEvents, reviewDetail,
  type AgreementDoc, type ReadStore, type ReviewRef,
} from '@cm/read-models';
import { HttpProblem } from './problem.js';
import { timeViewNames } from './schemas.js';

export type TimeView =
  | { kind: 'asOf'; at: string }
  | { kind: 'revision'; revision: number }
  | { kind: 'effectiveAt'; at: string };

export type TimeViewQuery = { asOf?: string | undefined; revision?: number | undefined; effectiveAt?: string | undefined };

/**
 * The view a query asks for, or null for the live read. Instants are normalised to UTC and one
 * beyond `latest` means `latest` (the contract's rule for `asOf`, kept for `effectiveAt` so
 * neither answers about a future nobody has recorded). `latest` is the later of this process's
 * clock and the log's last recordedAt (`latestInstant`): recordedAt never goes backwards, so it
 * can run ahead of this clock (another process's clock, or this one set back), and capping at the
 * clock alone would hide events already recorded, even from `asOf=<the recordedAt just returned>`.
 */
export function timeViewOf(query: TimeViewQuery, latest: string): TimeView | null {
  const given = timeViewNames.filter((k) => query[k] !== undefined);
  if (given.length > 1) {
    throw new HttpProblem(
      400,
      'conflicting_time_views',
      `give at most one of asOf, revision and effectiveAt; this request gave ${given.join(' and ')}`,
      given.map((k) => ({ path: k, message: `cannot be combined with ${given.filter((o) => o !== k).join(', ')}` })),
    );
  }
  const clamp = (s: string) => {
    const at = normalizeInstant(s);
    return at > latest ? latest : at;
  };
  if (query.asOf !== undefined) return { kind: 'asOf', at: clamp(query.asOf) };
  if (query.revision !== undefined) return { kind: 'revision', revision: query.revision };
  if (query.effectiveAt !== undefined) return { kind: 'effectiveAt', at: clamp(query.effectiveAt) };
  return null;
}

/** The cap of `timeViewOf`; reads the log only when the query names an instant. */
export async function latestInstant(query: TimeViewQuery, now: string, eventStore: Pick<EventStore, 'lastRecordedAt'>): Promise<string> {
  if (query.asOf === undefined && query.effectiveAt === undefined) return now;
  const last = await eventStore.lastRecordedAt();
  return last !== null && last > now ? last : now;
}

/**
 * How the other streams a document shows are cut (an agreement's reviews, a review's
 * agreements): by the same kind of time as the document's own stream, so the answer is one
 * consistent picture. A `revision` view cuts them at the recordedAt of that revision.
 */
type Cut = { by: 'recorded' | 'occurred'; at: string };

/** The events a view keeps of one stream, and the instant its derived fields are computed against. */
type Selection = { events: StoredEvent[]; evaluatedAt: string; cut: Cut };

/** The fields that tell a time-travel answer from a live one, and which view it is. */
function viewFields(view: TimeView, evaluatedAt: string) {
  switch (view.kind) {
    case 'asOf':
      return { view: view.kind, asOf: view.at, evaluatedAt };
    case 'revision':
      return { view: view.kind, evaluatedAt };
    case 'effectiveAt':
      return { view: view.kind, effectiveAt: view.at, evaluatedAt };
  }
}

export function createTimeTravel(deps: { eventStore: EventStore; readStore: ReadStore }) {
  const { eventStore, readStore } = deps;

  async function readCut(stream: string, cut: Cut): Promise<StoredEvent[]> {
    return cut.by === 'recorded'
      ? eventStore.readStream(stream, { recordedUpTo: cut.at })
      : effectiveEvents(await eventStore.readStream(stream), cut.at);
  }

  async function select(stream: string, view: TimeView, what: string, notFoundCode: string): Promise<Selection> {
    switch (view.kind) {
      case 'asOf': {
        const events = await eventStore.readStream(stream, { recordedUpTo: view.at });
        if (events.length === 0) throw new NotFoundError(`${what} did not exist at ${view.at}`, notFoundCode);
        return { events, evaluatedAt: view.at, cut: { by: 'recorded', at: view.at } };
      }
      case 'revision': {
        const head = await eventStore.streamRevision(stream);
        if (head < 0) throw new NotFoundError(`${what} not found`, notFoundCode);
        if (view.revision > head) throw new NotFoundError(`${what} has no revision ${view.revision}; its latest is ${head}`, 'revision_not_found');
        const events = await eventStore.readStream(stream, { toRevision: view.revision });
        const recordedAt = events.at(-1)!.metadata.recordedAt;
        return { events, evaluatedAt: recordedAt, cut: { by: 'recorded', at: recordedAt } };
      }
      case 'effectiveAt': {
        const all = await eventStore.readStream(stream);
        if (all.length === 0) throw new NotFoundError(`${what} not found`, notFoundCode);
        return { events: effectiveEvents(all, view.at), evaluatedAt: view.at, cut: { by: 'occurred', at: view.at } };
      }
    }
  }

  /** A view that keeps events but not the one creating the stream (effectiveAt before it occurred) has nothing to show. */
  const notYet = (what: string, view: TimeView, code: string) =>
    new NotFoundError(view.kind === 'effectiveAt' ? `${what} did not exist yet at effectiveAt ${view.at}` : `${what} not found`, code);

  return {
    /** GET /v1/agreements/{id} as the view sees it, with the revision it stands at (for ETag). */
    async agreementAt(id: string, view: TimeView) {
      const what = `agreement ${id}`;
      const { events, evaluatedAt, cut } = await select(agreementStream(id), view, what, 'agreement_not_found');
      const agreement = foldAgreementEvents(events);
      if (!agreement.exists) throw notYet(what, view, 'agreement_not_found');
      const last = events.at(-1)!;
      // Reviews can only join an agreement, never leave it, so today's list holds every review it ever had.
      const refs = (await readStore.getAgreements([id])).get(id)?.reviews ?? [];
      const reviews: ReviewRef[] = [];
      for (const review of await Promise.all(refs.map(async (ref) => foldReviewEvents(await readCut(reviewStream(ref.id), cut))))) {
        if (review.exists && review.agreementIds.includes(id)) reviews.push({ id: review.id, title: review.title, scheduledFor: review.scheduledFor, status: review.status });
      }
      reviews.sort((x, y) => x.scheduledFor.localeCompare(y.scheduledFor) || x.id.localeCompare(y.id));
      const doc = { agreement, revision: last.revision, updatedAt: last.metadata.recordedAt, reviews };
      return { revision: last.revision, body: { ...agreementDetail(doc, evaluatedAt), ...viewFields(view, evaluatedAt) } };
    },

    /**
     * GET /v1/reviews/{id} as the view sees it. The agenda is computed, not omitted: each
     * agreement in scope is folded from its own stream by the same cut (one read per agreement,
     * at most 200, in parallel), and an agreement that did not exist yet at the cut is left out.
     */
    async reviewAt(id: string, view: TimeView) {
      const what = `review ${id}`;
      const { events, evaluatedAt, cut } = await select(reviewStream(id), view, what, 'review_not_found');
      const review = foldReviewEvents(events);
      if (!review.exists) throw notYet(what, view, 'review_not_found');
      const last = events.at(-1)!;
      const agreements = new Map<string, Pick<AgreementDoc, 'agreement'>>();
      const folded = await Promise.all(review.agreementIds.map(async (agreementId) => foldAgreementEvents(await readCut(agreementStream(agreementId), cut))));
      for (const agreement of folded) if (agreement.exists) agreements.set(agreement.id, { agreement });
      const doc = { review, revision: last.revision, updatedAt: last.metadata.recordedAt };
      return { revision: last.revision, body: { ...reviewDetail(doc, agreements, evaluatedAt), ...viewFields(view, evaluatedAt) } };
    },
  };
}
export type TimeTravel = ReturnType<typeof createTimeTravel>;
