// The rules computed against "now" (or asOf): overdue, counts, progress, agreement status.
import { describe, expect, it } from 'vitest';
import type { CommitmentState } from './agreement-decider.js';
import { agreementProgress, agreementStatusReason, commitmentCounts, deriveAgreementStatus, isDueByMeeting, isOverdue } from './status-rules.js';

let nextId = 0;
function commitment(overrides: Partial<CommitmentState> = {}): CommitmentState {
  const dueDate = overrides.dueDate ?? '2026-06-30';
  return {
    id: `commitment-${++nextId}`,
    agreementId: 'health-cooperation',
    title: 'Deliver something',
    description: null,
    responsible: { party: 'VEN', institution: 'Ministry of Health' },
    dueDate,
    originalDueDate: dueDate,
    dueRule: null,
    addedAt: '2025-01-01T00:00:00.000Z',
    status: 'pending',
    progress: 0,
    lastUpdateAt: null,
    implementedAt: null,
    cancelledAt: null,
    cancellationReason: null,
    delays: [],
    progressRevision: null,
    dueDateRevision: 1,
    ...overrides,
  };
}
const pending = (dueDate = '2026-06-30') => commitment({ dueDate });
const inProgress = (progress: number, dueDate = '2026-06-30') => commitment({ status: 'in_progress', progress, dueDate });
const delayed = (dueDate = '2026-12-31') => commitment({ status: 'delayed', progress: 30, dueDate, originalDueDate: '2026-06-30' });
const implemented = (dueDate = '2026-06-30') => commitment({ status: 'implemented', progress: 100, dueDate });
const cancelled = (dueDate = '2026-06-30', progress = 0) => commitment({ status: 'cancelled', progress, dueDate });

const BEFORE_DUE = '2026-03-01T12:00:00.000Z';
const AFTER_DUE = '2026-07-01T00:00:00.000Z';
const open = null;

describe('isOverdue', () => {
  it.each(['pending', 'in_progress', 'delayed'] as const)('a %s commitment whose due date has passed is overdue', (status) => {
    expect(isOverdue({ status, dueDate: '2026-06-30' }, '2026-07-01T00:00:00.000Z')).toBe(true);
  });

  it('a commitment due today is not overdue, even at the last millisecond of the day', () => {
    expect(isOverdue({ status: 'pending', dueDate: '2026-06-30' }, '2026-06-30T23:59:59.999Z')).toBe(false);
  });

  it('a commitment due later is not overdue', () => {
    expect(isOverdue({ status: 'pending', dueDate: '2026-06-30' }, BEFORE_DUE)).toBe(false);
  });

  it.each(['implemented', 'cancelled'] as const)('a %s commitment is never overdue', (status) => {
    expect(isOverdue({ status, dueDate: '2026-06-30' }, '2027-01-01T00:00:00.000Z')).toBe(false);
  });
});

describe('isDueByMeeting', () => {
  it('counts a date on the meeting day (UTC) whatever the hour, not the day after, never a pending date', () => {
    for (const meeting of ['2026-07-10T00:30:00.000Z', '2026-07-10T23:30:00.000Z', '2026-07-09T20:30:00-04:00', '2026-07-11T02:30:00+03:00']) {
      expect(isDueByMeeting({ dueDate: '2026-07-09' }, meeting)).toBe(true);
      expect(isDueByMeeting({ dueDate: '2026-07-10' }, meeting)).toBe(true);
      expect(isDueByMeeting({ dueDate: '2026-07-11' }, meeting)).toBe(false);
      expect(isDueByMeeting({ dueDate: null }, meeting)).toBe(false);
    }
  });
});

describe('commitmentCounts', () => {
  it('counts each status, the total, and the overdue ones among the live commitments', () => {
    const commitments = [
      pending('2026-06-30'), // overdue
      pending('2026-09-30'),
      inProgress(40, '2026-05-31'), // overdue
      delayed('2026-12-31'),
      implemented('2026-01-31'),
      cancelled('2026-01-31'),
    ];
    expect(commitmentCounts(commitments, AFTER_DUE)).toEqual({
      total: 6,
      pending: 2,
      in_progress: 1,
      delayed: 1,
      implemented: 1,
      cancelled: 1,
      overdue: 2,
    });
  });

  it('counts nothing for an agreement without commitments', () => {
    expect(commitmentCounts([], AFTER_DUE)).toEqual({ total: 0, pending: 0, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0, overdue: 0 });
  });
});

describe('agreementProgress', () => {
  it('is the mean progress over the commitments that are not cancelled', () => {
    expect(agreementProgress([inProgress(40), implemented(), cancelled('2026-06-30', 90)])).toBe(70);
  });

  it('is rounded to one decimal', () => {
    expect(agreementProgress([implemented(), pending(), pending()])).toBe(33.3);
    expect(agreementProgress([inProgress(50), inProgress(50), inProgress(100)])).toBe(66.7);
  });

  it('is 0 without commitments', () => {
    expect(agreementProgress([])).toBe(0);
  });

  it('is 0 when every commitment was cancelled', () => {
    expect(agreementProgress([cancelled('2026-06-30', 80), cancelled()])).toBe(0);
  });
});

describe('deriveAgreementStatus', () => {
  it('is terminated once terminated, whatever the commitments say', () => {
    const terminated = { at: '2026-02-15T09:00:00.000Z', reason: 'denounced' };
    expect(deriveAgreementStatus({ terminated, commitments: [implemented()] }, AFTER_DUE)).toBe('terminated');
    expect(deriveAgreementStatus({ terminated, commitments: [pending()] }, AFTER_DUE)).toBe('terminated');
  });

  it('is implemented when every commitment that is not cancelled is implemented', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [implemented(), cancelled(), implemented()] }, AFTER_DUE)).toBe('implemented');
  });

  it('is cancelled, not implemented nor signed, when every commitment was cancelled', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [cancelled(), cancelled()] }, AFTER_DUE)).toBe('cancelled');
  });

  it('is not implemented without commitments', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [] }, AFTER_DUE)).toBe('signed');
  });

  it('is delayed when a commitment is delayed, even if nothing is overdue', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [implemented(), delayed('2026-12-31')] }, BEFORE_DUE)).toBe('delayed');
  });

  it('is delayed when a commitment is overdue, and was not the day before', () => {
    const commitments = [inProgress(50, '2026-09-30'), pending('2026-06-30')];
    expect(deriveAgreementStatus({ terminated: open, commitments }, '2026-06-30T12:00:00.000Z')).toBe('in_implementation');
    expect(deriveAgreementStatus({ terminated: open, commitments }, '2026-07-01T12:00:00.000Z')).toBe('delayed');
  });

  it('is not delayed by a cancelled commitment past its due date', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [cancelled('2026-01-31'), pending('2026-09-30')] }, AFTER_DUE)).toBe('signed');
  });

  it('is in implementation once a commitment has progress', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [inProgress(10), pending()] }, BEFORE_DUE)).toBe('in_implementation');
  });

  it('is in implementation once some but not all commitments are implemented', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [implemented(), pending()] }, BEFORE_DUE)).toBe('in_implementation');
  });

  it('is signed while every commitment is pending and on time', () => {
    expect(deriveAgreementStatus({ terminated: open, commitments: [pending(), pending('2026-09-30')] }, BEFORE_DUE)).toBe('signed');
  });
});

describe('agreementStatusReason', () => {
  it('says that an agreement is delayed because a commitment is overdue, naming it', () => {
    const late = commitment({ id: 'joint-lab', dueDate: '2026-06-30', status: 'in_progress', progress: 40 });
    const reason = agreementStatusReason({ terminated: open, commitments: [late, pending('2026-09-30')] }, AFTER_DUE);
    expect(reason).toBe('delayed: 1 overdue: due date passed, not implemented (joint-lab)');
  });

  it('tells delayed commitments from overdue ones, and names at most five of each', () => {
    const many = Array.from({ length: 7 }, (_, i) => commitment({ id: `late-${i}`, dueDate: '2026-01-31' }));
    const reason = agreementStatusReason({ terminated: open, commitments: [commitment({ id: 'moved', status: 'delayed', dueDate: '2026-12-31' }), ...many] }, AFTER_DUE);
    expect(reason).toBe('delayed: 1 commitment delayed (moved); 7 overdue: due date passed, not implemented (late-0, late-1, late-2, late-3, late-4 and 2 more)');
  });

  it('names the rule of every other status', () => {
    expect(agreementStatusReason({ terminated: open, commitments: [inProgress(10)] }, BEFORE_DUE)).toMatch(/^in_implementation: /);
    expect(agreementStatusReason({ terminated: open, commitments: [] }, BEFORE_DUE)).toBe('signed: no commitment recorded yet');
    expect(agreementStatusReason({ terminated: open, commitments: [implemented(), cancelled()] }, AFTER_DUE)).toBe('implemented: every commitment that is not cancelled is implemented (1)');
    expect(agreementStatusReason({ terminated: { at: '2026-02-15T09:00:00.000Z', reason: 'denounced' }, commitments: [] }, AFTER_DUE)).toMatch(/^terminated: /);
  });
});
