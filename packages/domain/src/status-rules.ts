// Status rules that depend on "now": computed when asked, never stored, so a read model
// never goes stale just because a due date passed overnight.
import { terminationAt, type CommitmentState, type Denunciation, type ExistingAgreement } from './agreement-decider.js';
import type { AgreementStatus, CommitmentStatus } from './primitives.js';

/** Due date passed (strictly before the day of `asOf`, UTC) and neither implemented nor cancelled; a pending relative date (null) never is. */
export function isOverdue(c: Pick<CommitmentState, 'status' | 'dueDate'>, asOf: string): boolean {
  if (c.status === 'implemented' || c.status === 'cancelled') return false;
  if (c.dueDate === null) return false;
  return c.dueDate < asOf.slice(0, 10);
}

/**
 * On a review's agenda as "due before the meeting": dated on or before the meeting's day, the
 * day taken in UTC from the meeting instant (an offset is converted first). Day-granular on
 * purpose: a commitment due the day of the meeting is on that meeting's agenda, whatever the hour.
 * A pending relative date (null) never is.
 */
export function isDueByMeeting(c: Pick<CommitmentState, 'dueDate'>, scheduledFor: string): boolean {
  if (c.dueDate === null) return false;
  return c.dueDate <= new Date(scheduledFor).toISOString().slice(0, 10);
}

export type CommitmentCounts = Record<CommitmentStatus, number> & { total: number; overdue: number };

export function commitmentCounts(commitments: readonly CommitmentState[], asOf: string): CommitmentCounts {
  const counts: CommitmentCounts = { total: 0, pending: 0, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0, overdue: 0 };
  for (const c of commitments) {
    counts.total++;
    counts[c.status]++;
    if (isOverdue(c, asOf)) counts.overdue++;
  }
  return counts;
}

/** Mean progress over non-cancelled commitments, one decimal; 0 when there are none. */
export function agreementProgress(commitments: readonly CommitmentState[]): number {
  const active = commitments.filter((c) => c.status !== 'cancelled');
  if (active.length === 0) return 0;
  const mean = active.reduce((sum, c) => sum + c.progress, 0) / active.length;
  return Math.round(mean * 10) / 10;
}

type StatusInput = Pick<ExistingAgreement, 'terminated' | 'commitments'> & { denunciation?: Denunciation | null | undefined };

/**
 * First match wins: terminated; implemented (every non-cancelled commitment implemented, and at
 * least one of them: an agreement whose commitments were all cancelled has implemented nothing);
 * cancelled (there are commitments and every one of them was cancelled: nothing is left to
 * implement, which `signed` would hide); delayed (a live commitment delayed or overdue);
 * in_implementation (any progress); signed.
 */
export function deriveAgreementStatus(a: StatusInput, asOf: string): AgreementStatus {
  if (terminationAt(a, asOf)) return 'terminated';
  const active = a.commitments.filter((c) => c.status !== 'cancelled');
  if (active.length > 0 && active.every((c) => c.status === 'implemented')) return 'implemented';
  if (active.length === 0 && a.commitments.length > 0) return 'cancelled';
  if (active.some((c) => c.status === 'delayed' || isOverdue(c, asOf))) return 'delayed';
  if (active.some((c) => c.status !== 'pending' || c.progress > 0)) return 'in_implementation';
  return 'signed';
}

const MAX_NAMED = 5;
const named = (ids: readonly string[]) =>
  ids.length <= MAX_NAMED ? ids.join(', ') : `${ids.slice(0, MAX_NAMED).join(', ')} and ${ids.length - MAX_NAMED} more`;

/**
 * The rule that gave an agreement its status, in words, naming the commitments that decided
 * it: an agreement is `delayed` when a commitment is delayed *or overdue*, which a reader of
 * the status alone would not guess.
 */
export function agreementStatusReason(a: StatusInput, asOf: string): string {
  const reason = statusReasonOf(a, asOf);
  const d = a.denunciation;
  return d && !a.terminated && d.effectiveAt > asOf ? `${reason}; denounced by ${d.byParty} on ${d.noticeAt}, terminates at ${d.effectiveAt}` : reason;
}

function statusReasonOf(a: StatusInput, asOf: string): string {
  const status = deriveAgreementStatus(a, asOf);
  const active = a.commitments.filter((c) => c.status !== 'cancelled');
  switch (status) {
    case 'terminated':
      return a.terminated || !a.denunciation
        ? 'terminated: the agreement was terminated; its commitments can no longer change'
        : `terminated: denounced by ${a.denunciation.byParty} on ${a.denunciation.noticeAt}, in effect since ${a.denunciation.effectiveAt}; its commitments can no longer change`;
    case 'implemented':
      return `implemented: every commitment that is not cancelled is implemented (${active.length})`;
    case 'delayed': {
      const delayed = active.filter((c) => c.status === 'delayed').map((c) => c.id);
      const overdue = active.filter((c) => c.status !== 'delayed' && isOverdue(c, asOf)).map((c) => c.id);
      const parts = [
        ...(delayed.length > 0 ? [`${delayed.length} commitment${delayed.length === 1 ? '' : 's'} delayed (${named(delayed)})`] : []),
        ...(overdue.length > 0 ? [`${overdue.length} overdue: due date passed, not implemented (${named(overdue)})`] : []),
      ];
      return `delayed: ${parts.join('; ')}`;
    }
    case 'cancelled':
      return `cancelled: every commitment was cancelled (${a.commitments.length}); nothing is left to implement`;
    case 'in_implementation':
      return 'in_implementation: progress reported; no commitment delayed or overdue';
    case 'signed':
      return a.commitments.length === 0 ? 'signed: no commitment recorded yet' : 'signed: no progress reported yet; no commitment delayed or overdue';
    default: {
      const never: never = status;
      return never;
    }
  }
}
