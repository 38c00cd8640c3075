// What a key with parties may see: only agreements one of its parties is a party to, and the
// reviews of those agreements, cut to them. Everything else answers 404, as if it did not exist,
// so that one partner cannot learn of another partner's agreements. Applied in one place: a hook
// on every route with an agreement or review id in its path, and the queries each list handler
// asks (queriesFor). A key without parties sees everything, as before.
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { NotFoundError, mayRead, readsAll, reviewStream, type Principal } from '@cm/domain';
import type { EventStore } from '@cm/event-store';
import { createScanQueries, type AgreementDoc, type ReadStore, type ReviewDoc } from '@cm/read-models';
import { partiesOf } from './access.js';
import type { AppDeps } from './deps.js';
import { timeViewOf, type TimeViewQuery } from './time-travel.js';

/** The agreements a review covers, from its first event (its scope never changes); null for an unknown review. */
async function reviewAgreements(eventStore: EventStore, reviewId: string): Promise<string[] | null> {
  const [first] = await eventStore.readStream(reviewStream(reviewId), { fromRevision: 0, limit: 1 });
  return first ? (first.data as { agreementIds: string[] }).agreementIds : null;
}

/**
 * Which of a review's agreements `principal` sees: null when it sees them all (no parties),
 * else the visible ids in the review's order (empty: the review is hidden).
 */
export async function visibleReviewAgreements(eventStore: EventStore, principal: Principal, ids: readonly string[]): Promise<string[] | null> {
  if (readsAll(principal)) return null;
  const parties = await partiesOf(eventStore, ids);
  return ids.filter((_, i) => parties[i] != null && mayRead(principal, parties[i]!));
}

/** A review answer (view, detail, time-travel body) without the agreements the caller does not see. */
export function cutReview<T extends { agreementIds: string[]; agenda?: { agreementId: string }[] }>(review: T, visible: readonly string[] | null): T {
  if (visible === null) return review;
  const keep = (id: string) => visible.includes(id);
  return {
    ...review,
    agreementIds: review.agreementIds.filter(keep),
    ...(review.agenda ? { agenda: review.agenda.filter((a) => keep(a.agreementId)) } : {}),
  };
}

// The audit trail of a review is its hashed stream and cannot be cut: a key with parties reads
// it only when it sees every agreement the review covers.
const WHOLE_STREAM = ['/history', '/integrity', '/export'];

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route served, with its constraints (`format`): the read-scope test checks it has a case for each read. */
    servedRoutes: { method: string; url: string; constraints: Record<string, unknown> }[];
  }
}

const readScope = async (app: FastifyInstance, deps: Pick<AppDeps, 'eventStore' | 'now'>) => {
  const { eventStore } = deps;
  const served: FastifyInstance['servedRoutes'] = [];
  app.decorate('servedRoutes', served);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) served.push({ method, url: route.url, constraints: { ...(route.constraints ?? {}) } });
  });
  // preHandler: after the access hooks (401/403) and validation, before any handler reads.
  app.addHook('preHandler', async (request) => {
    const principal = request.principal;
    const url = request.routeOptions.url;
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (!principal || readsAll(principal) || !url || typeof id !== 'string') return;
    // Word for word what an id that does not exist gets, the time views' wording included.
    const hidden = (what: string, code: string) => {
      const view = url === `/v1/${what}s/:id` ? timeViewOf(request.query as TimeViewQuery, deps.now().toISOString()) : null;
      return new NotFoundError(view?.kind === 'asOf' ? `${what} ${id} did not exist at ${view.at}` : `${what} ${id} not found`, code);
    };
    if (url.startsWith('/v1/agreements/:id')) {
      const [parties] = await partiesOf(eventStore, [id]);
      // An unknown agreement goes on to the handler, which answers the same 404.
      if (parties && !mayRead(principal, parties)) throw hidden('agreement', 'agreement_not_found');
    } else if (url.startsWith('/v1/reviews/:id')) {
      const ids = await reviewAgreements(eventStore, id);
      if (!ids) return;
      const visible = (await visibleReviewAgreements(eventStore, principal, ids))!;
      const whole = WHOLE_STREAM.some((s) => url.endsWith(s));
      if (visible.length === 0 || (whole && visible.length < ids.length)) throw hidden('review', 'review_not_found');
    }
  });
};

export const readScopePlugin = fp(readScope, { name: 'read-scope', dependencies: ['access-control'] });

/** Documents of agreements `principal` sees, and reviews of them cut to them: what a scoped key's lists are computed from. */
function scopedStore(store: ReadStore, principal: Principal): Pick<ReadStore, 'allAgreements' | 'allReviews' | 'getAgreements'> {
  const agreements = async () => (await store.allAgreements()).filter((d) => mayRead(principal, d.agreement.parties));
  const cut = (doc: ReviewDoc, visible: ReadonlySet<string>): ReviewDoc | null => {
    const ids = doc.review.agreementIds.filter((id) => visible.has(id));
    return ids.length ? { ...doc, review: { ...doc.review, agreementIds: ids } } : null;
  };
  const visibleIds = async () => new Set((await agreements()).map((d) => d.agreement.id));
  return {
    allAgreements: agreements,
    async allReviews() {
      const visible = await visibleIds();
      return (await store.allReviews()).flatMap((d) => cut(d, visible) ?? []);
    },
    async getAgreements(ids) {
      const docs = await store.getAgreements(ids);
      return new Map([...docs].filter(([, d]) => mayRead(principal, d.agreement.parties))) as Map<string, AgreementDoc>;
    },
  };
}

/**
 * The list queries as `principal` may see them: the service's own for a key without parties,
 * else the reference scan over what the key sees (so totals, pages and dashboard counts hold
 * only visible agreements; it reads every document, which a scoped key's lists pay for).
 */
export function queriesFor(deps: Pick<AppDeps, 'queries' | 'readStore'>, principal: Principal): AppDeps['queries'] {
  if (readsAll(principal)) return deps.queries;
  const store = scopedStore(deps.readStore, principal);
  const scan = createScanQueries(store);
  return {
    ...deps.queries,
    listAgreements: scan.listAgreements,
    listCommitments: scan.listCommitments,
    listReviews: scan.listReviews,
    dashboard: scan.dashboard,
    async reviewDetail(id, now) {
      const detail = await deps.queries.reviewDetail(id, now);
      if (!detail) return null;
      const visible = (await store.getAgreements(detail.agreementIds));
      return detail.agreementIds.some((a) => visible.has(a)) ? cutReview(detail, [...visible.keys()]) : null;
    },
  };
}
