// The log as a feed for integrations: which events a key sees, cut and masked as its party
// scope and role say, and pages of them in log order. Read-only; the route (routes/events.ts)
// serves pages as JSON and a live tail as Server-Sent Events.
import { z } from 'zod';
import { agreementEvent, mayRead, parseStreamName, readsAll, reviewEvent, reviewStream, type Principal } from '@cm/domain';
import type { EventStore, Position, StoredEvent } from '@cm/event-store';
import { partiesOf } from './access.js';

export const EVENT_TYPES: readonly string[] = [
  ...agreementEvent.options.map((o) => o.shape.type.value),
  ...reviewEvent.options.map((o) => o.shape.type.value),
];

export const feedEvent = z.object({
  id: z.string().describe('The event id, unique across the log: a receiver drops repeats by it'),
  position: z.string().describe('The global log position (opaque, increasing): pass the last one seen as `after` or `Last-Event-ID`'),
  type: z.string(),
  stream: z.string(),
  revision: z.number().int(),
  agreementId: z.string().optional().describe('For an event of an agreement stream'),
  reviewId: z.string().optional().describe('For an event of a review stream'),
  agreementIds: z.array(z.string()).optional().describe("For an event of a review stream: the review's agreements the key sees"),
  occurredAt: z.string(),
  recordedAt: z.string(),
  actor: z.string(),
  data: z.unknown(),
});
export type FeedEvent = z.infer<typeof feedEvent>;

/** Roles that may read attendees' e-mail addresses and names; a viewer's feed has them masked. */
const SEES_PERSONAL_DATA = new Set(['editor', 'auditor', 'admin']);

/** `maria.perez@mppre.gob.ve` -> `m***@mppre.gob.ve`: enough to tell addresses apart, not to write to one. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  return at <= 0 ? '***' : `${email[0]}***${email.slice(at)}`;
}

type Data = Record<string, unknown>;

function maskPersonal(type: string, data: Data): Data {
  if (type === 'ReviewScheduled' && Array.isArray(data.attendees)) {
    // The name goes: a name with a domain identifies a person as well as the address does.
    return { ...data, attendees: (data.attendees as Data[]).map(({ name: _name, ...a }) => ({ ...a, email: maskEmail(String(a.email)) })) };
  }
  if ((type === 'ReminderSent' || type === 'ReminderFailed') && typeof data.email === 'string') {
    const email = data.email;
    const masked: Data = { ...data, email: maskEmail(email) };
    // A mail server's refusal often quotes the address.
    if (typeof data.error === 'string') masked.error = data.error.split(email).join(maskEmail(email));
    return masked;
  }
  return data;
}

function cutReviewData(type: string, data: Data, visible: ReadonlySet<string>): Data {
  if (type === 'ReviewScheduled' && Array.isArray(data.agreementIds)) return { ...data, agreementIds: (data.agreementIds as string[]).filter((id) => visible.has(id)) };
  if ((type === 'ReviewHeld' || type === 'ReviewOutcomeProposed') && Array.isArray(data.assessments)) {
    return { ...data, assessments: (data.assessments as { agreementId: string }[]).filter((a) => visible.has(a.agreementId)) };
  }
  return data;
}

export type FeedFilter = { types?: readonly string[] | undefined; agreementId?: string | undefined };

/**
 * What `principal` sees of each event, or null when it sees nothing of it. Parties of an
 * agreement and the agreements of a review never change, so they are looked up once per feed.
 */
export function createFeedView(eventStore: EventStore, principal: Principal, filter: FeedFilter) {
  const parties = new Map<string, string[] | null>();
  const reviewAgreements = new Map<string, string[]>();
  const types = filter.types?.length ? new Set(filter.types) : null;
  const personal = SEES_PERSONAL_DATA.has(principal.role);

  const agreementParties = async (id: string) => {
    if (!parties.has(id)) {
      const [p] = await partiesOf(eventStore, [id]);
      if (p) parties.set(id, p);
      return p ?? null;
    }
    return parties.get(id)!;
  };
  const agreementsOfReview = async (id: string, event: StoredEvent) => {
    let ids = reviewAgreements.get(id);
    if (!ids) {
      const first = event.revision === 0 ? event : (await eventStore.readStream(reviewStream(id), { fromRevision: 0, limit: 1 }))[0];
      ids = ((first?.data as { agreementIds?: string[] } | undefined)?.agreementIds) ?? [];
      reviewAgreements.set(id, ids);
    }
    return ids;
  };

  return async (event: StoredEvent): Promise<FeedEvent | null> => {
    if (types && !types.has(event.type)) return null;
    const stream = parseStreamName(event.stream);
    let data = event.data as Data;
    const base = {
      id: event.id, position: event.position, type: event.type, stream: event.stream, revision: event.revision,
      occurredAt: event.metadata.occurredAt, recordedAt: event.metadata.recordedAt, actor: event.metadata.actor,
    };
    let where: Pick<FeedEvent, 'agreementId' | 'reviewId' | 'agreementIds'>;
    if (stream?.kind === 'agreement') {
      if (filter.agreementId !== undefined && filter.agreementId !== stream.id) return null;
      if (!readsAll(principal)) {
        const p = await agreementParties(stream.id);
        if (!p || !mayRead(principal, p)) return null;
      }
      where = { agreementId: stream.id };
    } else if (stream?.kind === 'review') {
      const all = await agreementsOfReview(stream.id, event);
      let visible = all;
      if (!readsAll(principal)) {
        visible = [];
        for (const id of all) {
          const p = await agreementParties(id);
          if (p && mayRead(principal, p)) visible.push(id);
        }
        if (visible.length === 0) return null;
        if (visible.length < all.length) data = cutReviewData(event.type, data, new Set(visible));
      }
      if (filter.agreementId !== undefined && !visible.includes(filter.agreementId)) return null;
      where = { reviewId: stream.id, agreementIds: visible };
    } else {
      // A stream of no agreement or review concerns no party: only keys without parties see it.
      if (!readsAll(principal) || filter.agreementId !== undefined) return null;
      where = {};
    }
    if (!personal) data = maskPersonal(event.type, data);
    return { ...base, ...where, data };
  };
}

/** How many events one page may scan for a key whose filters skip most of them, before it answers what it found. */
export const SCAN_BUDGET = 10_000;

/**
 * The events after `after` that `view` shows, at most `limit`. `next` is the position to pass
 * back as `after` (the last event scanned, shown or not, so a filtered page still advances);
 * `more` says whether the scan stopped before the end of the log.
 */
export async function readFeedPage(eventStore: EventStore, view: ReturnType<typeof createFeedView>, after: Position | null, limit: number) {
  const events: FeedEvent[] = [];
  let cursor = after;
  let scanned = 0;
  let more = false;
  outer: while (scanned < SCAN_BUDGET) {
    const asked = Math.min(500, SCAN_BUDGET - scanned);
    const batch = await eventStore.readAll({ after: cursor, limit: asked });
    for (const e of batch) {
      scanned += 1;
      const shown = await view(e);
      cursor = e.position;
      if (shown) events.push(shown);
      if (events.length >= limit) {
        more = true;
        break outer;
      }
    }
    if (batch.length < asked) break;
    more = true;
  }
  // A page that stopped exactly at the end of the log says so.
  if (more && cursor !== null && (await eventStore.headPosition()) === cursor) more = false;
  return { events, next: cursor, more };
}
