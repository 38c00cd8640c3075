// The memory read store (the embedded default): documents in maps, plus indexes kept on every
// commit so lists and the dashboard do not read every document: the commitment index (see
// memory-commitment-index.ts) and dashboard counters. As in the Redis store, what depends on
// "now" is served from a static part plus due dates: an agreement that is `signed` or
// `in_implementation` ignoring time turns `delayed` once its earliest open due date passes.
// Answers are those of the reference scan queries (queries.ts), to the order and the cursor.
import { awaitingRatification, deriveAgreementStatus, type AgreementStatus, type CommitmentStatus, type ExistingAgreement } from '@cm/domain';
import { comparePositions, type Position } from '@cm/event-store';
import type { AgreementDoc, ReviewDoc } from './documents.js';
import { createCommitmentIndex } from './memory-commitment-index.js';
import { addMilestones, awaitingByParty, createScanQueries, descDate, zeroMilestones, type Dashboard } from './queries.js';
import { CheckpointMismatchError, type ReadStore } from './read-store.js';

const PAST = '0001-01-01T00:00:00.000Z';
const AGREEMENT_STATUSES: AgreementStatus[] = ['signed', 'in_implementation', 'delayed', 'implemented', 'cancelled', 'terminated'];
const COMMITMENT_STATUSES: CommitmentStatus[] = ['pending', 'in_progress', 'delayed', 'implemented', 'cancelled'];
/** Statuses an agreement leaves for `delayed` when an open commitment's due date passes. */
const CAN_FALL_OVERDUE: readonly AgreementStatus[] = ['signed', 'in_implementation'];

/** What an agreement contributes to the dashboard counters. */
type AgreementMark = { sector: string; status: AgreementStatus; /** Earliest open due date, when the status can fall overdue. */ earliest: string | null };

function markOf(a: ExistingAgreement): AgreementMark {
  const status = deriveAgreementStatus(a, PAST);
  let earliest: string | null = null;
  if (CAN_FALL_OVERDUE.includes(status)) {
    for (const c of a.commitments) {
      if (c.status !== 'implemented' && c.status !== 'cancelled' && c.dueDate !== null && (earliest === null || c.dueDate < earliest)) earliest = c.dueDate;
    }
  }
  return { sector: a.sector, status, earliest };
}

const zeroAgreementCounts = (): Record<AgreementStatus, number> => ({ signed: 0, in_implementation: 0, delayed: 0, implemented: 0, cancelled: 0, terminated: 0 });

export function createMemoryReadStore(): ReadStore {
  const agreements = new Map<string, AgreementDoc>();
  const reviews = new Map<string, ReviewDoc>();
  let checkpoint: Position | null = null;
  const listeners = new Set<(p: Position) => void>();

  const commitments = createCommitmentIndex();
  /** Agreements under a pending denunciation, which the counters do not see terminate. */
  const denounced = new Map<string, ExistingAgreement>();
  const marks = new Map<string, AgreementMark>();
  const sectors = new Map<string, { total: number; byStatus: Record<AgreementStatus, number>; earliest: Map<AgreementStatus, Map<string, number>> }>();
  const commitmentCounts: Record<CommitmentStatus, number> = { pending: 0, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0 };
  let commitmentTotal = 0;
  /** Milestone counts, and the agreement each agreement's part of them was counted from. */
  const milestoneCounts = zeroMilestones();
  const milestonesOf = new Map<string, ExistingAgreement>();
  /** Sectors in the order the reference dashboard meets them (first agreement of each, in insertion order); null: to recompute. Sectors without agreements are skipped when read. */
  let sectorOrder: string[] | null = [];
  /** Ids in list order, kept until a document that changes the order arrives. */
  let agreementsInOrder: string[] | null = null;
  let reviewsInOrder: ReviewDoc[] | null = null;

  const sectorOf = (name: string) => {
    let s = sectors.get(name);
    if (!s) sectors.set(name, (s = { total: 0, byStatus: zeroAgreementCounts(), earliest: new Map() }));
    return s;
  };
  const count = (m: AgreementMark, delta: 1 | -1) => {
    const s = sectorOf(m.sector);
    s.total += delta;
    s.byStatus[m.status] += delta;
    if (m.earliest !== null) {
      let dates = s.earliest.get(m.status);
      if (!dates) s.earliest.set(m.status, (dates = new Map()));
      const n = (dates.get(m.earliest) ?? 0) + delta;
      if (n === 0) dates.delete(m.earliest);
      else dates.set(m.earliest, n);
    }
  };

  /** Agreements written since the indexes last caught up: indexed once however many commits changed them. */
  const unindexed = new Set<string>();
  const knownSectors = new Set<string>();

  function putAgreement(id: string, doc: AgreementDoc): void {
    const old = agreements.get(id);
    const a = doc.agreement;
    if (!old) {
      if (!knownSectors.has(a.sector)) {
        knownSectors.add(a.sector);
        sectorOrder?.push(a.sector);
      }
      agreementsInOrder = null;
    } else {
      if (old.agreement.sector !== a.sector) {
        knownSectors.add(a.sector);
        sectorOrder = null;
      }
      if (old.agreement.signedAt !== a.signedAt) agreementsInOrder = null;
    }
    agreements.set(id, doc);
    unindexed.add(id);
  }

  /** Brings the commitment index and the dashboard counters up to the documents. */
  function catchUp(): void {
    for (const id of unindexed) {
      const a = agreements.get(id)!.agreement;
      const before = marks.get(id);
      if (before) count(before, -1);
      const mark = markOf(a);
      count(mark, 1);
      marks.set(id, mark);
      // A denunciation terminates the agreement at its effectiveAt, with no event: judged when counted.
      if (a.denunciation && !a.terminated) denounced.set(id, a);
      else denounced.delete(id);
      const old = milestonesOf.get(id);
      if (old) addMilestones(milestoneCounts, old, -1);
      addMilestones(milestoneCounts, a, 1);
      milestonesOf.set(id, a);
      const { removed, added } = commitments.put(a);
      for (const s of removed) commitmentCounts[s]--;
      for (const s of added) commitmentCounts[s]++;
      commitmentTotal += added.length - removed.length;
    }
    unindexed.clear();
  }

  function sortedAgreements(): AgreementDoc[] {
    if (!agreementsInOrder) {
      const keyed = [...agreements].map(([id, d]) => ({ k: descDate(d.agreement.signedAt), id }));
      keyed.sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      // (map keys are the agreements' ids)
      agreementsInOrder = keyed.map((x) => x.id);
    }
    return agreementsInOrder.map((id) => agreements.get(id)!);
  }
  function sortedReviews(): ReviewDoc[] {
    reviewsInOrder ??= [...reviews.values()].sort(
      (x, y) => x.review.scheduledFor.localeCompare(y.review.scheduledFor) || x.review.id.localeCompare(y.review.id),
    );
    return reviewsInOrder;
  }

  // Agreements and reviews are listed by the reference scan, over documents kept in list order
  // (its sort then finds them sorted): they number far fewer than commitments.
  const scan = createScanQueries({ allAgreements: async () => sortedAgreements(), allReviews: async () => sortedReviews() });

  const pick = <T>(m: Map<string, T>, ids: Iterable<string>) => {
    const out = new Map<string, T>();
    for (const id of ids) {
      const d = m.get(id);
      if (d) out.set(id, d);
    }
    return out;
  };

  return {
    listAgreements: scan.listAgreements,
    listReviews: scan.listReviews,

    async listCommitments(f, now) {
      catchUp();
      return commitments.list(f, now);
    },

    async dashboard(now: string, upcoming = 10): Promise<Dashboard> {
      const today = now.slice(0, 10);
      catchUp();
      if (!sectorOrder) {
        // An agreement changed sector: the reference meets sectors in the order of the agreements.
        const seen = new Set<string>();
        for (const d of agreements.values()) seen.add(d.agreement.sector);
        sectorOrder = [...seen];
        knownSectors.clear();
        for (const name of seen) knownSectors.add(name);
      }
      const totals = zeroAgreementCounts();
      let total = 0;
      const bySector: Dashboard['agreements']['bySector'] = {};
      for (const name of sectorOrder) {
        const s = sectors.get(name);
        if (!s || s.total === 0) continue;
        const byStatus = { ...s.byStatus };
        for (const status of CAN_FALL_OVERDUE) {
          let fallen = 0;
          for (const [date, n] of s.earliest.get(status) ?? []) if (date < today) fallen += n;
          byStatus[status] -= fallen;
          byStatus.delayed += fallen;
        }
        for (const a of denounced.values()) {
          if (a.sector !== name || !a.denunciation || a.denunciation.effectiveAt > now) continue;
          // The counters hold it under the status it has without the denunciation.
          byStatus[deriveAgreementStatus({ ...a, denunciation: null }, now)]--;
          byStatus.terminated++;
        }
        bySector[name] = { total: s.total, byStatus };
        total += s.total;
        for (const st of AGREEMENT_STATUSES) totals[st] += byStatus[st];
      }
      const scheduled = (await scan.listReviews({ status: 'scheduled' })).items;
      // Agreements awaiting ratification are few (signed, not yet in force): read from the documents.
      const awaiting: Record<string, string[]> = {};
      for (const d of agreements.values()) for (const p of awaitingRatification(d.agreement, now)) (awaiting[p] ??= []).push(d.agreement.id);
      return {
        agreements: { total, byStatus: totals, bySector },
        commitments: {
          total: commitmentTotal,
          byStatus: Object.fromEntries(COMMITMENT_STATUSES.map((s) => [s, commitmentCounts[s]])) as Record<CommitmentStatus, number>,
          overdue: commitments.overdue(now),
        },
        upcomingReviews: scheduled.filter((r) => r.scheduledFor > now).slice(0, upcoming),
        awaitingRatification: awaitingByParty(awaiting),
        milestones: { ...milestoneCounts },
      };
    },

    async checkpoint() {
      return checkpoint;
    },
    async getAgreements(ids) {
      return pick(agreements, ids);
    },
    async getReviews(ids) {
      return pick(reviews, ids);
    },
    async allAgreements() {
      return [...agreements.values()];
    },
    async allReviews() {
      return [...reviews.values()];
    },
    async commit(changes, next, { from }) {
      if (checkpoint !== from) {
        // Already applied (a retry whose first answer was lost, or a writer that got further): every
        // checkpoint was reached by batches that proved their start, so this one is covered.
        if (checkpoint !== null && comparePositions(checkpoint, next) >= 0) return;
        throw new CheckpointMismatchError(from, next, checkpoint);
      }
      // Synchronous from here on: nothing else runs between the documents, the indexes and the checkpoint.
      for (const [id, d] of changes.agreements) putAgreement(id, d);
      if (changes.reviews.size > 0) reviewsInOrder = null;
      for (const [id, d] of changes.reviews) reviews.set(id, d);
      checkpoint = next;
      for (const l of listeners) l(next);
    },
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}
