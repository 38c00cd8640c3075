// Queries over the read store. Filters are zod schemas so the HTTP layer validates query
// strings with the very shapes the queries take.
import { z } from 'zod';
import {
  ValidationError, agreementLifecycle, agreementStatus, awaitingRatification, deriveLifecycle, commitmentStatus, deriveAgreementStatus, isOverdue, isoDate, instant, normalizeInstant, party,
  reviewStatus, sector, slug, type AgreementStatus, type CommitmentStatus, type ExistingAgreement,
} from '@cm/domain';
import type { ReadStore } from './read-store.js';
import { agreementSummary, commitmentView, reviewDetail, reviewView, type AgreementSummary, type CommitmentView, type ReviewView } from './views.js';

/** Where a pending relative due date (null) sorts in commitment lists: after every date, in every store. */
export const UNDATED = '~';

const limit = (max: number, dflt: number) => z.coerce.number().int().min(1).max(max).default(dflt);
const cursor = z.string().max(500).optional();

export const agreementFilter = z.object({
  sector: sector.optional(),
  status: agreementStatus.optional(),
  lifecycle: agreementLifecycle.optional(),
  party: party.optional(),
  session: z.string().min(1).max(120).optional(),
  q: z.string().min(1).max(200).optional(),
  limit: limit(500, 50),
  cursor,
});
export type AgreementFilter = z.infer<typeof agreementFilter>;

export const commitmentFilter = z.object({
  status: commitmentStatus.optional(),
  overdue: z.enum(['true', 'false']).optional(),
  party: party.optional(),
  institution: z.string().min(1).max(200).optional(),
  sector: sector.optional(),
  agreementId: slug.optional(),
  dueBefore: isoDate.optional(),
  dueAfter: isoDate.optional(),
  limit: limit(500, 50),
  cursor,
});
export type CommitmentFilter = z.infer<typeof commitmentFilter>;

export const reviewFilter = z.object({
  from: instant.optional(),
  to: instant.optional(),
  status: reviewStatus.optional(),
  agreementId: slug.optional(),
});
export type ReviewFilter = z.infer<typeof reviewFilter>;

export type Page<T> = { items: T[]; total: number; nextCursor: string | null };

export const foldText = (s: string) => s.normalize('NFD').replace(/\p{Diacritic}/gu, '').toLowerCase();

export function encodeCursor(key: string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}
export function decodeCursor(c: string | undefined, size: number): string[] | null {
  if (c === undefined) return null;
  try {
    const key = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(key) && key.length === size && key.every((k) => typeof k === 'string')) return key as string[];
  } catch {
    // fall through to the error below: a cursor is only ever one this service handed out
  }
  throw new ValidationError('invalid cursor', [{ path: 'cursor', message: 'must be a nextCursor value from a previous page' }]);
}

function paginate<T>(sorted: T[], key: (t: T) => string[], after: string[] | null, size: number): Page<T> {
  const cmp = (a: string[], b: string[]) => {
    for (let i = 0; i < a.length; i++) {
      const c = a[i]! < b[i]! ? -1 : a[i]! > b[i]! ? 1 : 0;
      if (c !== 0) return c;
    }
    return 0;
  };
  const start = after ? sorted.findIndex((t) => cmp(key(t), after) > 0) : 0;
  const from = start === -1 ? sorted.length : start;
  const items = sorted.slice(from, from + size);
  const more = from + size < sorted.length;
  return { items, total: sorted.length, nextCursor: more && items.length ? encodeCursor(key(items.at(-1)!)) : null };
}

// Agreements list newest signature first; a descending date sorts ascending by its complement.
export const descDate = (d: string) => String(99999999 - Number(d.replaceAll('-', ''))).padStart(8, '0');

export type ListQueries = {
  listAgreements(f: AgreementFilter, now: string): Promise<Page<AgreementSummary>>;
  listCommitments(f: CommitmentFilter, now: string): Promise<Page<CommitmentListItem>>;
  listReviews(f: ReviewFilter): Promise<{ items: ReviewView[] }>;
  dashboard(now: string, upcoming?: number): Promise<Dashboard>;
};
export type CommitmentListItem = CommitmentView & { agreementTitle: string; sector: string };

/** Queries answered by filtering every document: the memory adapter's way, and the reference for others. */
export function createScanQueries(store: Pick<ReadStore, 'allAgreements' | 'allReviews'>) {
  return {
    async listAgreements(f: AgreementFilter, now: string): Promise<Page<AgreementSummary>> {
      const q = f.q ? foldText(f.q) : null;
      const after = decodeCursor(f.cursor, 2);
      const rows = (await store.allAgreements())
        .filter((d) => {
          const a = d.agreement;
          if (f.sector && a.sector !== f.sector) return false;
          if (f.party && !a.parties.includes(f.party)) return false;
          if (f.session && a.session?.name !== f.session) return false;
          if (q && !foldText(a.title).includes(q)) return false;
          if (f.status && deriveAgreementStatus(a, now) !== f.status) return false;
          if (f.lifecycle && deriveLifecycle(a, now) !== f.lifecycle) return false;
          return true;
        })
        .map((d) => ({ key: [descDate(d.agreement.signedAt), d.agreement.id], d }))
        .sort((x, y) => (x.key[0]! < y.key[0]! ? -1 : x.key[0]! > y.key[0]! ? 1 : x.key[1]! < y.key[1]! ? -1 : x.key[1]! > y.key[1]! ? 1 : 0));
      const page = paginate(rows, (r) => r.key, after, f.limit);
      return { ...page, items: page.items.map((r) => agreementSummary(r.d, now)) };
    },

    async listCommitments(f: CommitmentFilter, now: string): Promise<Page<CommitmentListItem>> {
      const after = decodeCursor(f.cursor, 3);
      const institution = f.institution ? foldText(f.institution) : null;
      const rows: { key: string[]; v: CommitmentListItem }[] = [];
      for (const d of await store.allAgreements()) {
        const a = d.agreement;
        if (f.agreementId && a.id !== f.agreementId) continue;
        if (f.sector && a.sector !== f.sector) continue;
        for (const c of a.commitments) {
          if (f.status && c.status !== f.status) continue;
          if (f.party && c.responsible.party !== f.party) continue;
          if (institution && !foldText(c.responsible.institution).includes(institution)) continue;
          if (f.dueBefore && !(c.dueDate !== null && c.dueDate < f.dueBefore)) continue;
          if (f.dueAfter && !(c.dueDate !== null && c.dueDate > f.dueAfter)) continue;
          if (f.overdue && isOverdue(c, now) !== (f.overdue === 'true')) continue;
          rows.push({ key: [c.dueDate ?? UNDATED, c.id, a.id], v: { ...commitmentView(c, now), agreementTitle: a.title, sector: a.sector } });
        }
      }
      rows.sort((x, y) => {
        for (let i = 0; i < 3; i++) if (x.key[i] !== y.key[i]) return x.key[i]! < y.key[i]! ? -1 : 1;
        return 0;
      });
      const page = paginate(rows, (r) => r.key, after, f.limit);
      return { ...page, items: page.items.map((r) => r.v) };
    },

    async listReviews(f: ReviewFilter): Promise<{ items: ReviewView[] }> {
      const from = f.from ? normalizeInstant(f.from) : null;
      const to = f.to ? normalizeInstant(f.to) : null;
      const items = (await store.allReviews())
        .filter((d) => {
          const r = d.review;
          if (f.status && r.status !== f.status) return false;
          if (f.agreementId && !r.agreementIds.includes(f.agreementId)) return false;
          if (from && r.scheduledFor < from) return false;
          if (to && r.scheduledFor > to) return false;
          return true;
        })
        .sort((x, y) => x.review.scheduledFor.localeCompare(y.review.scheduledFor) || x.review.id.localeCompare(y.review.id))
        .map(reviewView);
      return { items };
    },

    async dashboard(now: string, upcoming = 10): Promise<Dashboard> {
      const byStatus = (): Record<AgreementStatus, number> => ({ signed: 0, in_implementation: 0, delayed: 0, implemented: 0, cancelled: 0, terminated: 0 });
      const agreements = { total: 0, byStatus: byStatus(), bySector: {} as Record<string, { total: number; byStatus: Record<AgreementStatus, number> }> };
      const commitments = { total: 0, byStatus: { pending: 0, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0 } as Record<CommitmentStatus, number>, overdue: 0 };
      const awaiting: Record<string, string[]> = {};
      const milestones = zeroMilestones();
      for (const d of await store.allAgreements()) {
        const a = d.agreement;
        addMilestones(milestones, a, 1);
        for (const p of awaitingRatification(a, now)) (awaiting[p] ??= []).push(a.id);
        const status = deriveAgreementStatus(a, now);
        agreements.total++;
        agreements.byStatus[status]++;
        const s = (agreements.bySector[a.sector] ??= { total: 0, byStatus: byStatus() });
        s.total++;
        s.byStatus[status]++;
        for (const c of a.commitments) {
          commitments.total++;
          commitments.byStatus[c.status]++;
          if (isOverdue(c, now)) commitments.overdue++;
        }
      }
      const upcomingReviews = (await store.allReviews())
        .filter((d) => d.review.status === 'scheduled' && d.review.scheduledFor > now)
        .sort((x, y) => x.review.scheduledFor.localeCompare(y.review.scheduledFor) || x.review.id.localeCompare(y.review.id))
        .slice(0, upcoming)
        .map(reviewView);
      return { agreements, commitments, upcomingReviews, awaitingRatification: awaitingByParty(awaiting), milestones };
    },
  };
}
export type MilestoneCounts = { total: number; scheduled: number; met: number; partially_met: number; not_met: number };
export const zeroMilestones = (): MilestoneCounts => ({ total: 0, scheduled: 0, met: 0, partially_met: 0, not_met: 0 });
/** Adds (or, with -1, takes away) an agreement's milestones to counts by status. */
export function addMilestones(counts: MilestoneCounts, a: Pick<ExistingAgreement, 'commitments'>, sign: 1 | -1): void {
  for (const c of a.commitments) {
    for (const m of c.milestones ?? []) {
      counts.total += sign;
      counts[m.status] += sign;
    }
  }
}

/** Parties in code order, each with the agreements not in force it has still to ratify (ids sorted). */
export function awaitingByParty(byParty: Record<string, string[]>): Dashboard['awaitingRatification'] {
  return Object.fromEntries(
    Object.keys(byParty).sort().map((p) => {
      const ids = [...byParty[p]!].sort();
      return [p, { count: ids.length, agreementIds: ids }];
    }),
  );
}

export type Dashboard = {
  agreements: { total: number; byStatus: Record<AgreementStatus, number>; bySector: Record<string, { total: number; byStatus: Record<AgreementStatus, number> }> };
  commitments: { total: number; byStatus: Record<CommitmentStatus, number>; overdue: number };
  upcomingReviews: ReviewView[];
  /** Per party, the agreements signed but not yet in force whose ratification it has still to notify. */
  awaitingRatification: Record<string, { count: number; agreementIds: string[] }>;
  /** Milestones of every commitment, by status (scheduled until one is recorded). */
  milestones: MilestoneCounts;
};

/** The queries the API asks: lists from the store's own indexes, details from documents. */
export function createQueries(store: ReadStore) {
  return {
    listAgreements: (f: AgreementFilter, now: string) => store.listAgreements(f, now),
    listCommitments: (f: CommitmentFilter, now: string) => store.listCommitments(f, now),
    listReviews: (f: ReviewFilter) => store.listReviews(f),
    dashboard: (now: string, upcoming = 10) => store.dashboard(now, upcoming),
    async reviewDetail(id: string, now: string) {
      const doc = (await store.getReviews([id])).get(id);
      if (!doc) return null;
      return reviewDetail(doc, await store.getAgreements(doc.review.agreementIds), now);
    },

  };
}
export type Queries = ReturnType<typeof createQueries>;
