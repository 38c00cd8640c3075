// Writes a realistic mixed ledger into a real event store, through the domain deciders so every
// event is one the API could have appended: agreements signed with commitments, progress,
// delays, implementations, cancellations, terminations, and reviews scheduled, rescheduled,
// reminded, held (with AgreementReviewed on each agreement in scope) and cancelled.
// Deterministic for a given seed. Test helper only (not exported from index.ts).
import type { AgreementCommand, Assessment, CommitmentStatus } from '@cm/domain';
import type { AppendResult } from '@cm/event-store';
import type { LedgerWriter } from './ledger-writer.js';

/** A small deterministic PRNG (mulberry32), so a failing run can be replayed. */
export function createRandom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

const addDays = (date: string, days: number) => new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

const SECTORS = ['health', 'air_transport', 'science', 'energy', 'economy', 'culture'];
const PARTNERS = ['RUS', 'CUB', 'BLR', 'CHN'];

type CommitmentModel = { id: string; status: CommitmentStatus; dueDate: string };
type AgreementModel = { id: string; parties: string[]; commitments: CommitmentModel[]; terminated: boolean; added: number };
type ReviewModel = { id: string; scheduledFor: string; agreementIds: string[]; status: 'scheduled' | 'held' | 'cancelled'; attendees: string[] };

export type MixedLedger = {
  /** Events appended in all. */
  events: number;
  agreementIds: string[];
  reviewIds: string[];
  /** Result of the last append. */
  last: AppendResult;
  /** The instant after every occurredAt written. */
  end: string;
};

export async function writeMixedLedger(
  w: LedgerWriter,
  options: { agreements: number; reviews: number; targetEvents: number; seed: number },
): Promise<MixedLedger> {
  const rnd = createRandom(options.seed);
  let clock = Date.parse('2026-01-02T08:00:00.000Z');
  const tick = () => {
    clock += 3_600_000;
    return new Date(clock).toISOString();
  };
  let events = 0;
  let last: AppendResult | null = null;
  const count = (r: AppendResult) => {
    events += r.events.length;
    last = r;
    return r;
  };

  const agreements: AgreementModel[] = [];
  for (let i = 0; i < options.agreements; i++) {
    const id = `agr-${String(i).padStart(2, '0')}`;
    const parties = ['VEN', rnd.pick(PARTNERS)];
    const n = rnd.int(1, 4);
    const commitments = Array.from({ length: n }, (_, k) => ({
      commitmentId: `c-${k}`,
      title: `Commitment ${k} of ${id}`,
      dueDate: addDays('2026-02-01', rnd.int(0, 400)),
      responsible: { party: rnd.pick(parties), institution: rnd.pick(['Ministerio de Salud', 'Ministry of Energy', 'Academia de Ciencias']) },
    }));
    const command: AgreementCommand = {
      type: 'SignAgreement',
      agreementId: id,
      title: `Agreement ${i} on ${rnd.pick(['cooperación', 'trade', 'science', 'aviation'])}`,
      kind: rnd.pick(['agreement', 'protocol', 'memorandum'] as const),
      sector: rnd.pick(SECTORS),
      parties,
      signedAt: addDays('2025-06-01', rnd.int(0, 200)),
      ...(rnd.next() < 0.7 ? { session: { name: 'CIAN XIX', date: '2025-11-28' } } : {}),
      commitments,
    };
    count(await w.agreement(id, command, tick()));
    agreements.push({ id, parties, terminated: false, added: n, commitments: commitments.map((c) => ({ id: c.commitmentId, status: 'pending', dueDate: c.dueDate })) });
  }

  const reviews: ReviewModel[] = [];
  for (let i = 0; i < options.reviews; i++) {
    const id = `review-${i}`;
    const scope = [...new Set(Array.from({ length: rnd.int(3, 6) }, () => rnd.pick(agreements).id))];
    const attendees = [`desk-${i}@example.org`, `minister-${i}@example.org`];
    const scheduledFor = new Date(Date.parse('2026-06-01T09:00:00.000Z') + rnd.int(0, 90) * 86_400_000).toISOString();
    const now = tick();
    count(await w.review(id, {
      type: 'ScheduleReview', now, reviewId: id, title: `Review ${i}`, scheduledFor, agreementIds: scope,
      attendees: attendees.map((email) => ({ email })),
    }, now));
    reviews.push({ id, scheduledFor, agreementIds: scope, status: 'scheduled', attendees });
  }

  const activeOf = (a: AgreementModel) => a.commitments.filter((c) => c.status !== 'implemented' && c.status !== 'cancelled');

  async function agreementStep() {
    const open = agreements.filter((a) => !a.terminated);
    const a = rnd.pick(open);
    const active = activeOf(a);
    const roll = rnd.next();
    const at = tick();
    if (active.length === 0 || roll < 0.08) {
      const cid = `c-${a.added++}`;
      const dueDate = addDays('2026-03-01', rnd.int(0, 400));
      count(await w.agreement(a.id, {
        type: 'AddCommitment',
        commitment: { commitmentId: cid, title: `Added ${cid}`, dueDate, responsible: { party: a.parties[0]!, institution: 'Ministerio de Planificación' } },
      }, at));
      a.commitments.push({ id: cid, status: 'pending', dueDate });
      return;
    }
    const c = rnd.pick(active);
    if (roll < 0.5) {
      const reported = await w.agreement(a.id, { type: 'ReportProgress', commitmentId: c.id, percent: rnd.int(1, 99) }, at);
      count(reported);
      if (c.status === 'pending') c.status = 'in_progress';
      // Now and then a figure was wrong: corrected by its revision, without consuming the seeded sequence.
      if (reported.revision % 9 === 0) count(await w.agreement(a.id, { type: 'CorrectEvent', revision: reported.revision, target: { commitmentId: c.id, kind: 'progress', type: 'ProgressReported' }, percent: reported.revision % 100, reason: 'figure typed wrong' }, at));
    } else if (roll < 0.68) {
      const newDueDate = addDays(c.dueDate, rnd.int(10, 120));
      const delayedAt = await w.agreement(a.id, { type: 'DelayCommitment', commitmentId: c.id, reason: 'budget not released', newDueDate }, at);
      count(delayedAt);
      c.status = 'delayed';
      c.dueDate = newDueDate;
      if (delayedAt.revision % 11 === 0) {
        const corrected = addDays(newDueDate, 1);
        count(await w.agreement(a.id, { type: 'CorrectEvent', revision: delayedAt.revision, target: { commitmentId: c.id, kind: 'dueDate', type: 'CommitmentDelayed' }, dueDate: corrected, reason: 'date typed wrong' }, at));
        c.dueDate = corrected;
      }
    } else if (roll < 0.88) {
      count(await w.agreement(a.id, { type: 'ImplementCommitment', commitmentId: c.id, evidenceUrl: 'https://example.org/evidence' }, at));
      c.status = 'implemented';
    } else if (roll < 0.97) {
      count(await w.agreement(a.id, { type: 'CancelCommitment', commitmentId: c.id, reason: 'superseded' }, at));
      c.status = 'cancelled';
    } else {
      count(await w.agreement(a.id, { type: 'TerminateAgreement', reason: 'denounced' }, at));
      a.terminated = true;
    }
  }

  async function reviewStep() {
    const scheduled = reviews.filter((r) => r.status === 'scheduled');
    if (scheduled.length === 0) return agreementStep();
    const r = rnd.pick(scheduled);
    const at = tick();
    if (rnd.next() < 0.5) {
      const scheduledFor = new Date(Date.parse(r.scheduledFor) + rnd.int(1, 20) * 86_400_000).toISOString();
      count(await w.review(r.id, { type: 'RescheduleReview', now: at, scheduledFor, reason: 'minister travelling' }, at));
      r.scheduledFor = scheduledFor;
    } else {
      count(await w.review(r.id, { type: 'RecordReminderSent', scheduledFor: r.scheduledFor, offset: rnd.pick(['7d', '1d']), email: rnd.pick(r.attendees), sentAt: at }, at));
      count(await w.review(r.id, { type: 'RecordReminderFailed', scheduledFor: r.scheduledFor, offset: '1h', email: r.attendees[0]!, failedAt: at, attempts: 5, error: '550 mailbox unavailable' }, at));
    }
  }

  // Leave room for the outcomes written at the end.
  const closing = 12;
  while (events < options.targetEvents - closing) {
    if (rnd.next() < 0.12) await reviewStep();
    else await agreementStep();
  }

  // One review is held: ReviewHeld, then AgreementReviewed on each agreement in scope (as the API does).
  const held = reviews[0];
  if (held) {
    const heldAt = tick();
    const assessments: Assessment[] = held.agreementIds.map((agreementId) => ({ agreementId, rating: rnd.pick(['on_track', 'at_risk', 'off_track', 'done'] as const) }));
    // One side proposes the outcome first; the admin's record then holds the review.
    const joint = { reviewParties: ['RUS', 'VEN'], actingParties: ['VEN'] };
    count(await w.review(held.id, { type: 'RecordReviewOutcome', now: heldAt, heldAt, summary: 'Proposed', assessments, ...joint }, heldAt));
    count(await w.review(held.id, { type: 'RecordReviewOutcome', now: heldAt, heldAt, summary: 'Reviewed', assessments }, heldAt));
    held.status = 'held';
    for (const agreementId of held.agreementIds) {
      count(await w.agreement(agreementId, { type: 'RecordAgreementReview', reviewId: held.id, heldAt, assessments }, heldAt));
    }
  }
  const cancelled = reviews[1];
  if (cancelled) {
    count(await w.review(cancelled.id, { type: 'CancelReview', reason: 'no quorum', reviewParties: ['RUS', 'VEN'], actingParties: ['VEN'] }, tick()));
    count(await w.review(cancelled.id, { type: 'CancelReview', reason: 'no quorum' }, tick()));
    cancelled.status = 'cancelled';
  }

  // One party gives notice on an open agreement and withdraws it.
  const noticed = agreements.find((a) => !a.terminated);
  if (noticed) {
    count(await w.agreement(noticed.id, { type: 'TerminateAgreement', reason: 'notice', actingParties: [noticed.parties[0]!] }, tick()));
    count(await w.agreement(noticed.id, { type: 'WithdrawDenunciation', reason: 'talks resumed', actingParties: [noticed.parties[0]!] }, tick()));
  }

  // A treaty's life: ratified by both parties (in force on the last), suspended and resumed, a
  // commitment broken into milestones; another applied provisionally, then expired.
  const ratified = 'lifecycle-ratified';
  count(await w.agreement(ratified, {
    type: 'SignAgreement', agreementId: ratified, title: 'Agreement on air connectivity', kind: 'agreement', sector: 'transport',
    parties: ['RUS', 'VEN'], signedAt: '2025-11-28', entryIntoForce: 'on_last_ratification',
    commitments: [{ commitmentId: 'route', title: 'Open the Caracas-Moscow route', dueDate: '2026-12-31', responsible: { party: 'VEN', institution: 'Ministerio de Transporte' } }],
  }, tick()));
  count(await w.agreement(ratified, { type: 'NotifyRatification', party: 'VEN', date: '2026-01-15' }, tick()));
  count(await w.agreement(ratified, { type: 'NotifyRatification', party: 'RUS', date: '2026-02-10' }, tick()));
  count(await w.agreement(ratified, { type: 'SuspendAgreement', date: '2026-03-01', reason: 'sanctions review' }, tick()));
  count(await w.agreement(ratified, { type: 'ResumeAgreement', date: '2026-04-01' }, tick()));
  count(await w.agreement(ratified, { type: 'AddMilestone', commitmentId: 'route', milestoneId: 'permits', title: 'Traffic permits', dueDate: '2026-06-30', weight: 40 }, tick()));
  count(await w.agreement(ratified, { type: 'RecordMilestoneStatus', commitmentId: 'route', milestoneId: 'permits', status: 'met' }, tick()));
  const provisional = 'lifecycle-provisional';
  count(await w.agreement(provisional, {
    type: 'SignAgreement', agreementId: provisional, title: 'Memorandum on scientific exchange', kind: 'memorandum', sector: 'science',
    parties: ['RUS', 'VEN'], signedAt: '2025-11-28', entryIntoForce: 'explicit', commitments: [],
  }, tick()));
  count(await w.agreement(provisional, { type: 'ApplyProvisionally', date: '2025-12-01' }, tick()));
  count(await w.agreement(provisional, { type: 'RecordEntryIntoForce', date: '2026-01-20' }, tick()));
  count(await w.agreement(provisional, { type: 'ExpireAgreement', date: '2026-05-01' }, tick()));

  return {
    events,
    agreementIds: [...agreements.map((a) => a.id), ratified, provisional],
    reviewIds: reviews.map((r) => r.id),
    last: last!,
    end: tick(),
  };
}
