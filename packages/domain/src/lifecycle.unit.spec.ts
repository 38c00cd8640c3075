// An agreement's life as a treaty, as given/when/then: ratifications, entry into force (derived,
// recorded, corrected), provisional application, suspension, expiry; due dates relative to entry
// into force and the rules that read them.
import { describe, expect, it } from 'vitest';
import {
  decideAgreement, deriveLifecycle, dueDateFrom, evolveAgreement, initialAgreementState, awaitingRatification, milestoneProgress,
  type AgreementState, type ExistingAgreement, type Milestone,
} from './agreement-decider.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from './errors.js';
import type { AgreementEvent, Timed } from './events.js';
import type { EntryIntoForceMode } from './primitives.js';
import { isOverdue } from './status-rules.js';
import { createGiven } from './testing/given-when-then.js';

const given = createGiven({ decide: decideAgreement, evolve: evolveAgreement, initialState: initialAgreementState });
const AT = '2026-01-20T10:00:00.000Z';
const ninety = { relativeTo: 'entry_into_force' as const, days: 90 };
const sixMonths = { relativeTo: 'entry_into_force' as const, months: 6 };

const signed = (entryIntoForce?: EntryIntoForceMode): Timed<AgreementEvent> => ({
  type: 'AgreementSigned',
  occurredAt: '2025-11-28T10:00:00.000Z',
  data: {
    agreementId: 'energy-2025', title: 'Energy agreement', kind: 'agreement', sector: 'energy', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
    ...(entryIntoForce ? { entryIntoForce } : {}),
  },
});
const added = (commitmentId: string, dueRule: typeof ninety | typeof sixMonths | null, dueDate?: string): Timed<AgreementEvent> => ({
  type: 'CommitmentAdded',
  occurredAt: '2025-11-28T10:00:00.000Z',
  data: {
    agreementId: 'energy-2025', commitmentId, title: `Deliver ${commitmentId}`, responsible: { party: 'VEN', institution: 'Corpoelec' },
    ...(dueRule ? { dueRule } : {}), ...(dueDate ? { dueDate } : {}),
  },
});
const ratified = (party: string, date: string): Timed<AgreementEvent> => ({ type: 'RatificationNotified', occurredAt: AT, data: { party, date } });
const inForce = (date: string): Timed<AgreementEvent> => ({ type: 'EntryIntoForceRecorded', occurredAt: AT, data: { date, movedDueDates: [] } });
const fold = (events: readonly Timed<AgreementEvent>[]): ExistingAgreement => {
  const s = events.reduce<AgreementState>((x, e) => evolveAgreement(x, e), initialAgreementState());
  if (!s.exists) throw new Error('expected an agreement');
  return s;
};

describe('relative due dates', () => {
  it('count days, and calendar months clamped to the month end', () => {
    expect(dueDateFrom(ninety, '2026-03-01')).toBe('2026-05-30');
    expect(dueDateFrom(sixMonths, '2025-08-31')).toBe('2026-02-28');
    expect(dueDateFrom({ relativeTo: 'entry_into_force', months: 0 }, '2026-01-31')).toBe('2026-01-31');
  });

  it('are pending (null) until entry into force, and never overdue while pending', () => {
    const a = fold([signed('on_last_ratification'), added('study', ninety)]);
    expect(a.commitments[0]).toMatchObject({ dueDate: null, originalDueDate: null, dueRule: ninety });
    expect(isOverdue(a.commitments[0]!, '2099-01-01T00:00:00.000Z')).toBe(false);
  });

  it('are fixed when added to an agreement already in force', () => {
    given([signed('explicit'), inForce('2026-01-10')])
      .when({ type: 'AddCommitment', commitment: { commitmentId: 'study', title: 'Study', dueDate: ninety, responsible: { party: 'VEN', institution: 'Corpoelec' } } })
      .then([{ type: 'CommitmentAdded', data: { agreementId: 'energy-2025', commitmentId: 'study', title: 'Study', dueDate: '2026-04-10', dueRule: ninety, responsible: { party: 'VEN', institution: 'Corpoelec' } } }]);
  });

  it('cannot be delayed while pending', () => {
    given([signed('on_last_ratification'), added('study', ninety)])
      .when({ type: 'DelayCommitment', commitmentId: 'study', reason: 'later', newDueDate: '2027-01-01' })
      .thenThrows(ConflictError, 'due_date_pending', ['newDueDate']);
  });
});

describe('ratification and entry into force', () => {
  it('derives entry into force from the last ratification, dated the latest one, fixing the pending due dates', () => {
    given([signed('on_last_ratification'), added('study', ninety), added('fixed', null, '2026-12-31'), ratified('RUS', '2026-01-15')])
      .when({ type: 'NotifyRatification', party: 'VEN', date: '2026-01-10' })
      .then([
        { type: 'RatificationNotified', data: { party: 'VEN', date: '2026-01-10' } },
        { type: 'EntryIntoForceRecorded', data: { date: '2026-01-15', derived: true, movedDueDates: [{ commitmentId: 'study', from: null, to: '2026-04-15' }] } },
      ]);
  });

  it('waits for the record when the agreement says explicit, and treats an agreement recorded before lifecycles as in force since signed', () => {
    given([signed('explicit'), ratified('RUS', '2026-01-15')])
      .when({ type: 'NotifyRatification', party: 'VEN', date: '2026-01-16' })
      .then([{ type: 'RatificationNotified', data: { party: 'VEN', date: '2026-01-16' } }]);
    expect(fold([signed()]).entryIntoForce).toEqual({ date: '2025-11-28', derived: true });
    expect(deriveLifecycle(fold([signed()]), AT)).toBe('in_force');
  });

  it('refuses another party than the caller acts for, a party twice, and a date outside signing..today', () => {
    const g = given([signed('on_last_ratification'), ratified('RUS', '2026-01-15')]);
    g.when({ type: 'NotifyRatification', party: 'RUS', date: '2026-01-15', actingParties: ['VEN'] }).thenThrows(ForbiddenError, 'outside_parties', ['party']);
    g.when({ type: 'NotifyRatification', party: 'RUS', date: '2026-01-16' }).thenThrows(ConflictError, 'already_ratified');
    g.when({ type: 'NotifyRatification', party: 'CUB', date: '2026-01-16' }).thenThrows(ValidationError, 'invalid_input', ['party']);
    g.when({ type: 'NotifyRatification', party: 'VEN', date: '2025-11-27' }).thenThrows(ValidationError, 'invalid_input', ['date']);
    // 2026-03-02T12:00Z is the clock: 03 March has begun at UTC+14, 04 March nowhere.
    g.when({ type: 'NotifyRatification', party: 'VEN', date: '2026-03-04' }).thenThrows(ValidationError, 'invalid_input', ['date']);
  });

  it('corrects entry into force only with a reason, moving the due dates its rule still gives and no other', () => {
    const history = [
      signed('explicit'), added('study', ninety), added('plant', sixMonths), added('done', ninety), added('late', ninety),
      inForce('2026-01-10'),
      { type: 'CommitmentImplemented', occurredAt: AT, data: { commitmentId: 'done' } },
      { type: 'CommitmentDelayed', occurredAt: AT, data: { commitmentId: 'late', reason: 'funding', previousDueDate: '2026-04-10', newDueDate: '2026-09-30' } },
    ] as Timed<AgreementEvent>[];
    const withDates = history.map((e) => (e.type === 'EntryIntoForceRecorded'
      ? { ...e, data: { ...e.data, movedDueDates: ['study', 'done', 'late'].map((id) => ({ commitmentId: id, from: null, to: '2026-04-10' })).concat([{ commitmentId: 'plant', from: null, to: '2026-07-10' }]) } }
      : e));
    const g = given(withDates as Timed<AgreementEvent>[]);
    g.when({ type: 'RecordEntryIntoForce', date: '2026-01-20' }).thenThrows(ValidationError, 'invalid_input', ['reason']);
    g.when({ type: 'RecordEntryIntoForce', date: '2026-01-10', reason: 'again' }).thenThrows(ConflictError, 'already_in_force');
    g.when({ type: 'RecordEntryIntoForce', date: '2026-01-20', reason: 'the note arrived on 20 January' }).then([{
      type: 'EntryIntoForceRecorded',
      data: {
        date: '2026-01-20', previousDate: '2026-01-10', reason: 'the note arrived on 20 January',
        movedDueDates: [{ commitmentId: 'study', from: '2026-04-10', to: '2026-04-20' }, { commitmentId: 'plant', from: '2026-07-10', to: '2026-07-20' }],
      },
    }]);
  });
});

describe('lifecycle', () => {
  it('goes signed -> provisionally_applied -> suspended -> provisionally_applied -> in_force -> expired, and the expired record is closed', () => {
    const steps: Timed<AgreementEvent>[] = [signed('on_last_ratification')];
    const at = () => deriveLifecycle(fold(steps), AT);
    expect(at()).toBe('signed');
    steps.push({ type: 'ProvisionalApplicationStarted', occurredAt: AT, data: { date: '2025-12-01' } });
    expect(at()).toBe('provisionally_applied');
    expect(awaitingRatification(fold(steps), AT)).toEqual(['VEN', 'RUS']);
    steps.push({ type: 'AgreementSuspended', occurredAt: AT, data: { date: '2025-12-10', reason: 'force majeure' } });
    expect(at()).toBe('suspended');
    given(steps).when({ type: 'SuspendAgreement', date: '2025-12-11', reason: 'again' }).thenThrows(ConflictError, 'already_suspended');
    given(steps).when({ type: 'ResumeAgreement', date: '2025-12-09' }).thenThrows(ValidationError, 'invalid_input', ['date']);
    steps.push({ type: 'AgreementResumed', occurredAt: AT, data: { date: '2025-12-20' } });
    expect(at()).toBe('provisionally_applied');
    steps.push(inForce('2026-01-10'));
    expect(at()).toBe('in_force');
    expect(awaitingRatification(fold(steps), AT)).toEqual([]);
    steps.push({ type: 'AgreementExpired', occurredAt: AT, data: { date: '2026-01-15' } });
    expect(at()).toBe('expired');
    given(steps).when({ type: 'ReportProgress', commitmentId: 'any', percent: 5 }).thenThrows(ConflictError, 'agreement_expired');
  });

  it('refuses to suspend what is not in force, and to apply provisionally what is', () => {
    given([signed('on_last_ratification')]).when({ type: 'SuspendAgreement', date: '2025-12-10', reason: 'x' }).thenThrows(ConflictError, 'not_in_force');
    given([signed('on_last_ratification')]).when({ type: 'ResumeAgreement', date: '2025-12-10' }).thenThrows(ConflictError, 'not_suspended');
    given([signed()]).when({ type: 'ApplyProvisionally', date: '2025-12-10' }).thenThrows(ConflictError, 'already_in_force');
  });

  it('is terminated from the instant a denunciation takes effect, not a millisecond before', () => {
    const a = fold([signed(), {
      type: 'AgreementDenounced', occurredAt: AT,
      data: { byParty: 'RUS', reason: 'notice', noticeAt: '2026-01-20T10:00:00.000Z', effectiveAt: '2026-07-20T10:00:00.000Z' },
    }]);
    expect(deriveLifecycle(a, '2026-07-20T09:59:59.999Z')).toBe('in_force');
    expect(deriveLifecycle(a, '2026-07-20T10:00:00.000Z')).toBe('terminated');
  });
});

describe('milestones', () => {
  const withPlant = [signed(), added('plant', null, '2026-12-31')];
  it('refuse weights over 100 in all, naming weight and what is left', () => {
    const g = given([...withPlant, { type: 'MilestoneAdded', occurredAt: AT, data: { commitmentId: 'plant', milestoneId: 'site', title: 'Site', dueDate: '2026-04-30', weight: 60 } }]);
    const err = g.when({ type: 'AddMilestone', commitmentId: 'plant', milestoneId: 'walls', title: 'Walls', dueDate: '2026-06-30', weight: 41 }).thenThrows(ValidationError, 'invalid_input', ['weight']);
    expect(err.errors[0]!.message).toMatch(/at most 40/);
    g.when({ type: 'AddMilestone', commitmentId: 'plant', milestoneId: 'site', title: 'Site', dueDate: '2026-06-30', weight: 10 }).thenThrows(ConflictError, 'milestone_exists');
    g.when({ type: 'RecordMilestoneStatus', commitmentId: 'plant', milestoneId: 'roof', status: 'met' }).thenThrows(NotFoundError, 'milestone_not_found');
  });

  it('give progress from their weights: met whole, partially_met half, not_met and scheduled nothing', () => {
    const m = (id: string, weight: number, status: Milestone['status']): Milestone => ({ id, title: id, dueDate: '2026-06-30', weight, status, note: null, evidenceUrl: null, statusAt: null });
    expect(milestoneProgress([])).toBeNull();
    expect(milestoneProgress([m('a', 30, 'met'), m('b', 50, 'partially_met'), m('c', 20, 'not_met')])).toBe(55);
    expect(milestoneProgress([m('a', 1, 'met'), m('b', 2, 'scheduled')])).toBe(33.3);
  });
});
