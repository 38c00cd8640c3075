// Every rule and every refusal of the agreement decider, as given/when/then.
import { describe, expect, it } from 'vitest';
import {
  addMonths,
  correctionTargetOf,
  decideAgreement,
  heldAtErrors,
  evolveAgreement,
  initialAgreementState,
  type AgreementCommand,
  type AgreementState,
  type CommitmentInput,
  type CommitmentState,
  type ExistingAgreement,
} from './agreement-decider.js';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';
import type { AgreementEvent, Assessment, Timed } from './events.js';
import { DEFAULT_OCCURRED_AT, createGiven } from './testing/given-when-then.js';

const given = createGiven({ decide: decideAgreement, evolve: evolveAgreement, initialState: initialAgreementState });

const AGREEMENT = 'health-cooperation';
const SIGNED_AT = '2025-11-28T10:00:00.000Z';
const ministryOfHealth = { party: 'VEN', institution: 'Ministry of Health' };

const signed = (): Timed<AgreementEvent> => ({
  type: 'AgreementSigned',
  occurredAt: SIGNED_AT,
  data: {
    agreementId: AGREEMENT,
    title: 'Agreement on cooperation in health',
    kind: 'agreement',
    sector: 'health',
    parties: ['VEN', 'RUS'],
    signedAt: '2025-11-28',
  },
});
const added = (commitmentId: string, dueDate = '2026-06-30'): Timed<AgreementEvent> => ({
  type: 'CommitmentAdded',
  occurredAt: SIGNED_AT,
  data: { agreementId: AGREEMENT, commitmentId, title: `Deliver ${commitmentId}`, dueDate, responsible: ministryOfHealth },
});
const progressed = (commitmentId: string, percent: number, occurredAt: string): Timed<AgreementEvent> => ({
  type: 'ProgressReported',
  occurredAt,
  data: { commitmentId, percent },
});
const implemented = (commitmentId: string, occurredAt = '2026-02-01T09:00:00.000Z'): Timed<AgreementEvent> => ({
  type: 'CommitmentImplemented',
  occurredAt,
  data: { commitmentId },
});
const delayed = (commitmentId: string, previousDueDate: string, newDueDate: string, occurredAt: string): Timed<AgreementEvent> => ({
  type: 'CommitmentDelayed',
  occurredAt,
  data: { commitmentId, reason: 'funding arrived late', previousDueDate, newDueDate },
});
const cancelled = (commitmentId: string, occurredAt = '2026-02-01T09:00:00.000Z'): Timed<AgreementEvent> => ({
  type: 'CommitmentCancelled',
  occurredAt,
  data: { commitmentId, reason: 'superseded by a later protocol' },
});
const terminated = (occurredAt = '2026-02-15T09:00:00.000Z'): Timed<AgreementEvent> => ({
  type: 'AgreementTerminated',
  occurredAt,
  data: { reason: 'denounced by a party' },
});
const reviewed = (reviewId: string, heldAt: string, assessments: Assessment[]): Timed<AgreementEvent> => ({
  type: 'AgreementReviewed',
  occurredAt: heldAt,
  data: { reviewId, heldAt, assessments },
});

const commitmentInput = (commitmentId: string, party = 'VEN'): CommitmentInput => ({
  commitmentId,
  title: `Deliver ${commitmentId}`,
  dueDate: '2026-06-30',
  responsible: { party, institution: 'Ministry of Health' },
});
const signCommand = (
  overrides: Partial<Extract<AgreementCommand, { type: 'SignAgreement' }>> = {},
): AgreementCommand => ({
  type: 'SignAgreement',
  agreementId: AGREEMENT,
  title: 'Agreement on cooperation in health',
  kind: 'agreement',
  sector: 'health',
  parties: ['VEN', 'RUS'],
  signedAt: '2025-11-28',
  commitments: [],
  ...overrides,
});

function existing(state: AgreementState): ExistingAgreement {
  if (!state.exists) throw new Error('expected the agreement to exist');
  return state;
}
function commitmentOf(state: AgreementState, id: string): CommitmentState {
  const c = existing(state).commitments.find((x) => x.id === id);
  if (!c) throw new Error(`expected commitment ${id}`);
  return c;
}

describe('SignAgreement', () => {
  it('records the agreement, then each commitment in the order given', () => {
    given([])
      .when(signCommand({
        session: { name: 'CIAN XIX', date: '2025-11-28' },
        commitments: [commitmentInput('vaccine-plant'), commitmentInput('joint-lab', 'RUS')],
      }))
      .then([
        {
          type: 'AgreementSigned',
          data: {
            agreementId: AGREEMENT,
            title: 'Agreement on cooperation in health',
            kind: 'agreement',
            sector: 'health',
            parties: ['VEN', 'RUS'],
            signedAt: '2025-11-28',
            session: { name: 'CIAN XIX', date: '2025-11-28' },
            // The default, written out: a reader of the log never has to know it.
            entryIntoForce: 'on_last_ratification',
          },
        },
        {
          type: 'CommitmentAdded',
          data: { agreementId: AGREEMENT, commitmentId: 'vaccine-plant', title: 'Deliver vaccine-plant', dueDate: '2026-06-30', responsible: ministryOfHealth },
        },
        {
          type: 'CommitmentAdded',
          data: { agreementId: AGREEMENT, commitmentId: 'joint-lab', title: 'Deliver joint-lab', dueDate: '2026-06-30', responsible: { party: 'RUS', institution: 'Ministry of Health' } },
        },
      ]);
  });

  it('leaves a signed agreement whose commitments are pending, at 0%, on their original due date', () => {
    const state = given([]).when(signCommand({ commitments: [commitmentInput('vaccine-plant')] })).thenState();
    const a = existing(state);
    expect(a).toMatchObject({ id: AGREEMENT, parties: ['VEN', 'RUS'], terminated: null, lastReviewedAt: null, session: null, summary: null });
    expect(a.commitments).toEqual([
      {
        id: 'vaccine-plant',
        agreementId: AGREEMENT,
        title: 'Deliver vaccine-plant',
        description: null,
        responsible: ministryOfHealth,
        dueDate: '2026-06-30',
        originalDueDate: '2026-06-30',
        dueRule: null,
        addedAt: DEFAULT_OCCURRED_AT,
        status: 'pending',
        progress: 0,
        lastUpdateAt: null,
        implementedAt: null,
        cancelledAt: null,
        cancellationReason: null,
        delays: [],
        progressRevision: null,
        dueDateRevision: 1,
      },
    ]);
  });

  it('collapses a party named twice', () => {
    const state = given([]).when(signCommand({ parties: ['VEN', 'RUS', 'VEN'] })).thenState();
    expect(existing(state).parties).toEqual(['VEN', 'RUS']);
  });

  it.each([
    ['one party', ['VEN']],
    ['the same party twice', ['VEN', 'VEN']],
    ['no party', []],
  ])('refuses %s: two distinct parties are needed', (_label, parties) => {
    given([]).when(signCommand({ parties })).thenThrows(ValidationError, 'invalid_input', ['parties']);
  });

  it('refuses a commitment id used twice, naming the later one', () => {
    given([])
      .when(signCommand({ commitments: [commitmentInput('vaccine-plant'), commitmentInput('joint-lab'), commitmentInput('vaccine-plant')] }))
      .thenThrows(ValidationError, 'invalid_input', ['commitments.2.id']);
  });

  it('refuses a commitment whose responsible party did not sign, naming its path', () => {
    given([])
      .when(signCommand({ commitments: [commitmentInput('vaccine-plant'), commitmentInput('joint-lab', 'CUB')] }))
      .thenThrows(ValidationError, 'invalid_input', ['commitments.1.responsible.party']);
  });

  it('lists every invalid field at once', () => {
    given([])
      .when(signCommand({ parties: ['VEN'], commitments: [commitmentInput('joint-lab', 'RUS'), commitmentInput('joint-lab')] }))
      .thenThrows(ValidationError, 'invalid_input', ['parties', 'commitments.0.responsible.party', 'commitments.1.id']);
  });

  it('refuses to sign the same agreement twice', () => {
    given([signed()]).when(signCommand()).thenThrows(ConflictError, 'agreement_exists');
  });
});

describe('AddCommitment', () => {
  const add: AgreementCommand = { type: 'AddCommitment', commitment: { ...commitmentInput('joint-lab'), description: 'A shared laboratory' } };

  it('adds the commitment to the agreement as pending', () => {
    given([signed()])
      .when(add)
      .then([
        {
          type: 'CommitmentAdded',
          data: { agreementId: AGREEMENT, commitmentId: 'joint-lab', title: 'Deliver joint-lab', description: 'A shared laboratory', dueDate: '2026-06-30', responsible: ministryOfHealth },
        },
      ]);
    const c = commitmentOf(given([signed()]).when(add).thenState(), 'joint-lab');
    expect(c).toMatchObject({ status: 'pending', progress: 0, description: 'A shared laboratory', originalDueDate: '2026-06-30' });
  });

  it('refuses an unknown agreement', () => {
    given([]).when(add).thenThrows(NotFoundError, 'agreement_not_found');
  });

  it('refuses a terminated agreement', () => {
    given([signed(), terminated()]).when(add).thenThrows(ConflictError, 'agreement_terminated');
  });

  it('refuses an id the agreement already has', () => {
    given([signed(), added('joint-lab')]).when(add).thenThrows(ConflictError, 'commitment_exists');
  });

  it('refuses a responsible party that did not sign the agreement', () => {
    given([signed()])
      .when({ type: 'AddCommitment', commitment: commitmentInput('joint-lab', 'CUB') })
      .thenThrows(ValidationError, 'invalid_input', ['responsible.party']);
  });
});

describe('ReportProgress', () => {
  const at = '2026-03-02T10:00:00.000Z';

  it('records the percent with its note and evidence', () => {
    given([signed(), added('vaccine-plant')])
      .when({ type: 'ReportProgress', commitmentId: 'vaccine-plant', percent: 40, note: 'site cleared', evidenceUrl: 'https://example.org/report.pdf' })
      .then([{ type: 'ProgressReported', data: { commitmentId: 'vaccine-plant', percent: 40, note: 'site cleared', evidenceUrl: 'https://example.org/report.pdf' } }]);
  });

  it('puts a pending commitment in progress and stamps lastUpdateAt with when it happened', () => {
    const state = given([signed(), added('vaccine-plant')])
      .when({ type: 'ReportProgress', commitmentId: 'vaccine-plant', percent: 40 }, at)
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant')).toMatchObject({ status: 'in_progress', progress: 40, lastUpdateAt: at });
  });

  it('keeps a delayed commitment delayed', () => {
    const state = given([signed(), added('vaccine-plant'), delayed('vaccine-plant', '2026-06-30', '2026-12-31', '2026-02-01T09:00:00.000Z')])
      .when({ type: 'ReportProgress', commitmentId: 'vaccine-plant', percent: 30 }, at)
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant')).toMatchObject({ status: 'delayed', progress: 30, lastUpdateAt: at });
  });

  it('lets the percent go down when an estimate is revised', () => {
    const history = [signed(), added('vaccine-plant'), progressed('vaccine-plant', 60, '2026-02-01T09:00:00.000Z')];
    given(history)
      .when({ type: 'ReportProgress', commitmentId: 'vaccine-plant', percent: 45 })
      .then([{ type: 'ProgressReported', data: { commitmentId: 'vaccine-plant', percent: 45 } }]);
    const state = given(history).when({ type: 'ReportProgress', commitmentId: 'vaccine-plant', percent: 45 }).thenState();
    expect(commitmentOf(state, 'vaccine-plant').progress).toBe(45);
  });
});

describe('ImplementCommitment', () => {
  const at = '2026-04-10T12:00:00.000Z';

  it('records the implementation with its note and evidence', () => {
    given([signed(), added('vaccine-plant')])
      .when({ type: 'ImplementCommitment', commitmentId: 'vaccine-plant', note: 'plant opened', evidenceUrl: 'https://example.org/opening' })
      .then([{ type: 'CommitmentImplemented', data: { commitmentId: 'vaccine-plant', note: 'plant opened', evidenceUrl: 'https://example.org/opening' } }]);
  });

  it('marks the commitment implemented at 100% on the day it happened', () => {
    const state = given([signed(), added('vaccine-plant'), progressed('vaccine-plant', 70, '2026-03-01T09:00:00.000Z')])
      .when({ type: 'ImplementCommitment', commitmentId: 'vaccine-plant' }, at)
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant')).toMatchObject({ status: 'implemented', progress: 100, implementedAt: at, lastUpdateAt: at });
  });

  it('implements a delayed commitment', () => {
    const state = given([signed(), added('vaccine-plant'), delayed('vaccine-plant', '2026-06-30', '2026-12-31', '2026-02-01T09:00:00.000Z')])
      .when({ type: 'ImplementCommitment', commitmentId: 'vaccine-plant' }, at)
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant')).toMatchObject({ status: 'implemented', progress: 100 });
  });
});

describe('DelayCommitment', () => {
  const firstAt = '2026-02-01T09:00:00.000Z';
  const secondAt = '2026-05-01T09:00:00.000Z';

  it('records the move from the current due date to the new one', () => {
    given([signed(), added('vaccine-plant', '2026-06-30')])
      .when({ type: 'DelayCommitment', commitmentId: 'vaccine-plant', reason: 'funding arrived late', newDueDate: '2026-09-30' })
      .then([{ type: 'CommitmentDelayed', data: { commitmentId: 'vaccine-plant', reason: 'funding arrived late', previousDueDate: '2026-06-30', newDueDate: '2026-09-30' } }]);
  });

  it('moves the due date, keeps the original one and lists the delay', () => {
    const state = given([signed(), added('vaccine-plant', '2026-06-30')])
      .when({ type: 'DelayCommitment', commitmentId: 'vaccine-plant', reason: 'funding arrived late', newDueDate: '2026-09-30' }, firstAt)
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant')).toMatchObject({
      status: 'delayed',
      dueDate: '2026-09-30',
      originalDueDate: '2026-06-30',
      lastUpdateAt: firstAt,
      delays: [{ reason: 'funding arrived late', previousDueDate: '2026-06-30', newDueDate: '2026-09-30', at: firstAt }],
    });
  });

  it('chains a second delay from the last due date, not the original one', () => {
    const state = given([signed(), added('vaccine-plant', '2026-06-30'), delayed('vaccine-plant', '2026-06-30', '2026-09-30', firstAt)])
      .when({ type: 'DelayCommitment', commitmentId: 'vaccine-plant', reason: 'customs hold', newDueDate: '2026-12-31' }, secondAt)
      .thenState();
    const c = commitmentOf(state, 'vaccine-plant');
    expect(c.dueDate).toBe('2026-12-31');
    expect(c.originalDueDate).toBe('2026-06-30');
    expect(c.delays).toEqual([
      { reason: 'funding arrived late', previousDueDate: '2026-06-30', newDueDate: '2026-09-30', at: firstAt, revision: 2 },
      { reason: 'customs hold', previousDueDate: '2026-09-30', newDueDate: '2026-12-31', at: secondAt, revision: 3 },
    ]);
  });

  it.each([
    ['the same as', '2026-06-30'],
    ['earlier than', '2026-06-29'],
  ])('refuses a new due date %s the current one, naming newDueDate', (_label, newDueDate) => {
    given([signed(), added('vaccine-plant', '2026-06-30')])
      .when({ type: 'DelayCommitment', commitmentId: 'vaccine-plant', reason: 'x', newDueDate })
      .thenThrows(ConflictError, 'due_date_not_later', ['newDueDate']);
  });

  it('compares with the current due date after an earlier delay', () => {
    given([signed(), added('vaccine-plant', '2026-06-30'), delayed('vaccine-plant', '2026-06-30', '2026-09-30', firstAt)])
      .when({ type: 'DelayCommitment', commitmentId: 'vaccine-plant', reason: 'x', newDueDate: '2026-08-31' })
      .thenThrows(ConflictError, 'due_date_not_later', ['newDueDate']);
  });
});

describe('CancelCommitment', () => {
  it('records the cancellation and its reason', () => {
    given([signed(), added('vaccine-plant')])
      .when({ type: 'CancelCommitment', commitmentId: 'vaccine-plant', reason: 'superseded by a later protocol' })
      .then([{ type: 'CommitmentCancelled', data: { commitmentId: 'vaccine-plant', reason: 'superseded by a later protocol' } }]);
  });

  it('marks the commitment cancelled when it happened, with the reason', () => {
    const at = '2026-03-03T08:00:00.000Z';
    const state = given([signed(), added('vaccine-plant'), progressed('vaccine-plant', 20, '2026-02-01T09:00:00.000Z')])
      .when({ type: 'CancelCommitment', commitmentId: 'vaccine-plant', reason: 'superseded by a later protocol' }, at)
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant')).toMatchObject({
      status: 'cancelled',
      cancelledAt: at,
      cancellationReason: 'superseded by a later protocol',
      lastUpdateAt: at,
    });
  });
});

describe('commands on one commitment', () => {
  const commands: [string, AgreementCommand][] = [
    ['ReportProgress', { type: 'ReportProgress', commitmentId: 'vaccine-plant', percent: 10 }],
    ['ImplementCommitment', { type: 'ImplementCommitment', commitmentId: 'vaccine-plant' }],
    ['DelayCommitment', { type: 'DelayCommitment', commitmentId: 'vaccine-plant', reason: 'x', newDueDate: '2027-01-31' }],
    ['CancelCommitment', { type: 'CancelCommitment', commitmentId: 'vaccine-plant', reason: 'x' }],
  ];

  it.each(commands)('%s refuses an implemented commitment', (_name, command) => {
    given([signed(), added('vaccine-plant'), implemented('vaccine-plant')]).when(command).thenThrows(ConflictError, 'commitment_implemented');
  });

  it.each(commands)('%s refuses a cancelled commitment', (_name, command) => {
    given([signed(), added('vaccine-plant'), cancelled('vaccine-plant')]).when(command).thenThrows(ConflictError, 'commitment_cancelled');
  });

  it.each(commands)('%s refuses a commitment the agreement does not have', (_name, command) => {
    given([signed(), added('joint-lab')]).when(command).thenThrows(NotFoundError, 'commitment_not_found');
  });

  it.each(commands)('%s refuses an unknown agreement', (_name, command) => {
    given([]).when(command).thenThrows(NotFoundError, 'agreement_not_found');
  });

  it.each(commands)('%s refuses a terminated agreement', (_name, command) => {
    given([signed(), added('vaccine-plant'), terminated()]).when(command).thenThrows(ConflictError, 'agreement_terminated');
  });

  it.each(commands)('%s leaves the other commitments untouched', (_name, command) => {
    const before = given([signed(), added('vaccine-plant'), added('joint-lab')]);
    const after = before.when(command).thenState();
    expect(commitmentOf(after, 'joint-lab')).toEqual(commitmentOf(before.state, 'joint-lab'));
  });
});

describe('TerminateAgreement', () => {
  it('records the termination, when it happened and why', () => {
    const at = '2026-02-15T09:00:00.000Z';
    given([signed()])
      .when({ type: 'TerminateAgreement', reason: 'denounced by a party' })
      .then([{ type: 'AgreementTerminated', data: { reason: 'denounced by a party' } }]);
    const state = given([signed()]).when({ type: 'TerminateAgreement', reason: 'denounced by a party' }, at).thenState();
    expect(existing(state).terminated).toEqual({ at, reason: 'denounced by a party' });
  });

  it('refuses to terminate twice', () => {
    given([signed(), terminated()]).when({ type: 'TerminateAgreement', reason: 'again' }).thenThrows(ConflictError, 'agreement_terminated');
  });

  it('refuses an unknown agreement', () => {
    given([]).when({ type: 'TerminateAgreement', reason: 'x' }).thenThrows(NotFoundError, 'agreement_not_found');
  });
});

describe('RecordAgreementReview', () => {
  const ours: Assessment = { agreementId: AGREEMENT, rating: 'on_track' };
  const ourCommitment: Assessment = { agreementId: AGREEMENT, commitmentId: 'vaccine-plant', rating: 'at_risk', note: 'supplier late' };
  const theirs: Assessment = { agreementId: 'air-connectivity', rating: 'off_track' };

  it('records the review with only the assessments of this agreement', () => {
    given([signed(), added('vaccine-plant')])
      .when({ type: 'RecordAgreementReview', reviewId: 'review-march', heldAt: '2026-03-10T09:00:00.000Z', assessments: [ours, theirs, ourCommitment] })
      .then([{ type: 'AgreementReviewed', data: { reviewId: 'review-march', heldAt: '2026-03-10T09:00:00.000Z', assessments: [ours, ourCommitment] } }]);
  });

  it('moves lastReviewedAt to the review and keeps its assessments', () => {
    const state = given([signed(), reviewed('review-march', '2026-03-10T09:00:00.000Z', [ours])])
      .when({ type: 'RecordAgreementReview', reviewId: 'review-june', heldAt: '2026-06-10T09:00:00.000Z', assessments: [ourCommitment, theirs] })
      .thenState();
    expect(existing(state)).toMatchObject({ lastReviewedAt: '2026-06-10T09:00:00.000Z', lastAssessments: [ourCommitment] });
  });

  it('never moves lastReviewedAt back when an older review is recorded late', () => {
    const state = given([signed(), reviewed('review-june', '2026-06-10T09:00:00.000Z', [ourCommitment])])
      .when({ type: 'RecordAgreementReview', reviewId: 'review-march', heldAt: '2026-03-10T09:00:00.000Z', assessments: [ours] })
      .thenState();
    expect(existing(state)).toMatchObject({ lastReviewedAt: '2026-06-10T09:00:00.000Z', lastAssessments: [ourCommitment] });
  });

  it('still records a review of a terminated agreement', () => {
    const state = given([signed(), terminated()])
      .when({ type: 'RecordAgreementReview', reviewId: 'review-march', heldAt: '2026-03-10T09:00:00.000Z', assessments: [ours] })
      .thenState();
    expect(existing(state).lastReviewedAt).toBe('2026-03-10T09:00:00.000Z');
  });

  it('refuses an unknown agreement', () => {
    given([])
      .when({ type: 'RecordAgreementReview', reviewId: 'review-march', heldAt: '2026-03-10T09:00:00.000Z', assessments: [] })
      .thenThrows(NotFoundError, 'agreement_not_found');
  });
});

describe('corrections', () => {
  const history = [signed(), added('vaccine-plant', '2026-06-30')];
  // What the api reads from the log for the revision a correction names.
  const progressTarget = { commitmentId: 'vaccine-plant', kind: 'progress', type: 'ProgressReported' } as const;
  const additionTarget = { commitmentId: 'vaccine-plant', kind: 'dueDate', type: 'CommitmentAdded' } as const;
  const delayTarget = { commitmentId: 'vaccine-plant', kind: 'dueDate', type: 'CommitmentDelayed' } as const;

  it('corrects the figure of the progress report a commitment stands on, leaving the report in history', () => {
    const g = given([...history, progressed('vaccine-plant', 80, '2026-03-01T09:00:00.000Z')]);
    g.when({ type: 'CorrectEvent', revision: 2, target: progressTarget, percent: 30, reason: 'typo: 30, not 80' }).then([
      { type: 'ProgressCorrected', data: { commitmentId: 'vaccine-plant', correctsRevision: 2, percent: 30, reason: 'typo: 30, not 80' } },
    ]);
    expect(commitmentOf(g.when({ type: 'CorrectEvent', revision: 2, target: progressTarget, percent: 30, reason: 'typo' }).thenState(), 'vaccine-plant').progress).toBe(30);
  });

  it('keeps the current progress when an older report is corrected', () => {
    const state = given([
      ...history,
      progressed('vaccine-plant', 80, '2026-03-01T09:00:00.000Z'),
      progressed('vaccine-plant', 90, '2026-03-02T09:00:00.000Z'),
    ])
      .when({ type: 'CorrectEvent', revision: 2, target: progressTarget, percent: 30, reason: 'typo' })
      .thenState();
    expect(commitmentOf(state, 'vaccine-plant').progress).toBe(90);
  });

  it('corrects a wrong due date at signature: due date and original due date move', () => {
    const c = commitmentOf(given(history).when({ type: 'CorrectEvent', revision: 1, target: additionTarget, dueDate: '2026-07-31', reason: 'wrong month' }).thenState(), 'vaccine-plant');
    expect([c.dueDate, c.originalDueDate]).toEqual(['2026-07-31', '2026-07-31']);
  });

  it('corrects the new date of a delay, in the delay record too', () => {
    const state = given([...history, delayed('vaccine-plant', '2026-06-30', '2026-09-30', '2026-02-01T09:00:00.000Z')])
      .when({ type: 'CorrectEvent', revision: 2, target: delayTarget, dueDate: '2026-10-31', reason: 'wrong month' })
      .thenState();
    const c = commitmentOf(state, 'vaccine-plant');
    expect(c.dueDate).toBe('2026-10-31');
    expect(c.originalDueDate).toBe('2026-06-30');
    expect(c.delays[0]!.newDueDate).toBe('2026-10-31');
  });

  it('moves the previous due date of the delay that followed the corrected date', () => {
    // Added due 2026-06-30 (revision 1), delayed to 2026-09-30 (2), then to 2026-12-31 (3).
    const twice = [...history, delayed('vaccine-plant', '2026-06-30', '2026-09-30', '2026-02-01T09:00:00.000Z'), delayed('vaccine-plant', '2026-09-30', '2026-12-31', '2026-05-01T09:00:00.000Z')];
    const atSignature = commitmentOf(given(twice).when({ type: 'CorrectEvent', revision: 1, target: additionTarget, dueDate: '2026-07-31', reason: 'wrong month' }).thenState(), 'vaccine-plant');
    expect(atSignature.delays.map((d) => [d.previousDueDate, d.newDueDate])).toEqual([['2026-07-31', '2026-09-30'], ['2026-09-30', '2026-12-31']]);
    expect(atSignature.dueDate).toBe('2026-12-31');
    const firstDelay = commitmentOf(given(twice).when({ type: 'CorrectEvent', revision: 2, target: delayTarget, dueDate: '2026-10-31', reason: 'wrong month' }).thenState(), 'vaccine-plant');
    expect(firstDelay.delays.map((d) => [d.previousDueDate, d.newDueDate])).toEqual([['2026-06-30', '2026-10-31'], ['2026-10-31', '2026-12-31']]);
  });

  it('refuses corrections once the agreement is terminated, and a due date correction of what was implemented or cancelled', () => {
    given([...history, progressed('vaccine-plant', 80, '2026-03-01T09:00:00.000Z'), terminated()])
      .when({ type: 'CorrectEvent', revision: 2, target: progressTarget, percent: 30, reason: 'typo' })
      .thenThrows(ConflictError, 'agreement_terminated');
    given([...history, implemented('vaccine-plant')])
      .when({ type: 'CorrectEvent', revision: 1, target: additionTarget, dueDate: '2026-01-31', reason: 'earlier' })
      .thenThrows(ConflictError, 'commitment_implemented');
    given([...history, cancelled('vaccine-plant')])
      .when({ type: 'CorrectEvent', revision: 1, target: additionTarget, dueDate: '2026-01-31', reason: 'earlier' })
      .thenThrows(ConflictError, 'commitment_cancelled');
  });

  it('refuses a revision that holds nothing correctable, and a value of the wrong kind', () => {
    given(history).when({ type: 'CorrectEvent', revision: 0, target: correctionTargetOf(signed()), percent: 10, reason: 'x' }).thenThrows(ValidationError, 'invalid_input', ['revision']);
    given(history).when({ type: 'CorrectEvent', revision: 9, target: null, percent: 10, reason: 'x' }).thenThrows(ValidationError, 'invalid_input', ['revision']);
    // A target for a revision the stream has not reached is not trusted.
    given(history).when({ type: 'CorrectEvent', revision: 2, target: progressTarget, percent: 10, reason: 'x' }).thenThrows(ValidationError, 'invalid_input', ['revision']);
    given(history).when({ type: 'CorrectEvent', revision: 1, target: correctionTargetOf(added('vaccine-plant', '2026-06-30')), percent: 10, reason: 'x' }).thenThrows(ValidationError, 'invalid_input', ['dueDate']);
  });
});

describe('dating: what cannot have happened is refused', () => {
  const addedLater = (id: string, occurredAt: string): Timed<AgreementEvent> => ({ ...added(id), occurredAt });

  it('refuses a signing date in the future, judged by the clock the command carries', () => {
    given([]).when(signCommand({ signedAt: '2026-03-04' }), '2026-03-02T10:00:00.000Z', '2026-03-02T10:00:00.000Z')
      .thenThrows(ValidationError, 'invalid_input', ['signedAt']);
    // The signing day in the earliest time zone (UTC+14) is already tomorrow in UTC.
    expect(given([]).when(signCommand({ signedAt: '2026-03-03' }), '2026-03-02T11:00:00.000Z', '2026-03-02T11:00:00.000Z').thenState().exists).toBe(true);
  });

  it('refuses a due date before the signing date, on signing, on addition and by correction', () => {
    given([]).when(signCommand({ commitments: [{ ...commitmentInput('lab'), dueDate: '2025-11-27' }] })).thenThrows(ValidationError, 'invalid_input', ['commitments.0.dueDate']);
    given([signed()]).when({ type: 'AddCommitment', commitment: { ...commitmentInput('lab'), dueDate: '2025-11-01' } }).thenThrows(ValidationError, 'invalid_input', ['dueDate']);
    given([signed(), added('lab')]).when({ type: 'CorrectEvent', revision: 1, target: { commitmentId: 'lab', kind: 'dueDate', type: 'CommitmentAdded' }, dueDate: '2024-12-31', reason: 'typo' })
      .thenThrows(ValidationError, 'invalid_input', ['dueDate']);
  });

  it('refuses an event dated before the signing, allowing the signing day in any time zone', () => {
    given([]).when(signCommand({}), '2025-11-27T09:00:00.000Z').thenThrows(ValidationError, 'invalid_input', ['occurredAt']);
    given([signed()]).when({ type: 'AddCommitment', commitment: commitmentInput('lab') }, '1901-01-01T00:00:00.000Z').thenThrows(ValidationError, 'invalid_input', ['occurredAt']);
    given([signed()]).when({ type: 'TerminateAgreement', reason: 'denounced' }, '2025-11-01T00:00:00.000Z').thenThrows(ValidationError, 'invalid_input', ['occurredAt']);
    expect(given([signed()]).when({ type: 'AddCommitment', commitment: commitmentInput('lab') }, '2025-11-27T10:00:00.000Z').thenState().exists).toBe(true);
  });

  it('refuses progress, implementation, delay or cancellation dated before the commitment was added', () => {
    const history = [signed(), addedLater('lab', '2026-01-10T00:00:00.000Z')];
    const before = '2026-01-09T23:59:59.000Z';
    for (const command of [
      { type: 'ReportProgress', commitmentId: 'lab', percent: 40 },
      { type: 'ImplementCommitment', commitmentId: 'lab' },
      { type: 'DelayCommitment', commitmentId: 'lab', reason: 'late', newDueDate: '2026-12-31' },
      { type: 'CancelCommitment', commitmentId: 'lab', reason: 'dropped' },
    ] as AgreementCommand[]) {
      const err = given(history).when(command, before).thenThrows(ValidationError, 'invalid_input', ['occurredAt']);
      expect(err.message).toContain('before commitment lab was added');
    }
    // The very instant of its addition is allowed (tolerance 0).
    expect(existing(given(history).when({ type: 'ImplementCommitment', commitmentId: 'lab' }, '2026-01-10T00:00:00.000Z').thenState()).commitments[0]!.status).toBe('implemented');
  });

  it('names heldAt when a review is dated before the signing or before an assessed commitment was added', () => {
    const a = existing(given([signed(), addedLater('lab', '2026-01-10T00:00:00.000Z')]).state);
    expect(heldAtErrors(a, '1901-01-01T00:00:00.000Z', []).map((e) => e.path)).toEqual(['heldAt']);
    expect(heldAtErrors(a, '2026-01-01T00:00:00.000Z', [{ agreementId: AGREEMENT, commitmentId: 'lab', rating: 'done' }]).map((e) => e.path)).toEqual(['heldAt']);
    expect(heldAtErrors(a, '2026-01-01T00:00:00.000Z', [{ agreementId: AGREEMENT, rating: 'on_track' }])).toEqual([]);
  });
});

describe('denunciation', () => {
  const signed = (noticePeriodMonths?: number) => [evolveAgreement(initialAgreementState(), {
    type: 'AgreementSigned', occurredAt: '2025-11-28T10:00:00Z',
    data: { agreementId: 'oil', title: 'Oil', kind: 'agreement', sector: 'energy', parties: ['VEN', 'RUS'], signedAt: '2025-11-28', ...(noticePeriodMonths !== undefined ? { noticePeriodMonths } : {}) },
  })][0]!;

  it('given a notice on 31 August, when 6 months pass, then it takes effect on the last day of February', () => {
    expect(addMonths('2026-08-31T09:00:00.000Z', 6)).toBe('2027-02-28T09:00:00.000Z');
    expect(addMonths('2027-08-31T09:00:00.000Z', 6)).toBe('2028-02-29T09:00:00.000Z');
  });

  it('given one party denounces, then commands pass until effectiveAt and are refused from it', () => {
    const [e] = decideAgreement({ type: 'TerminateAgreement', reason: 'notice', actingParties: ['VEN'] }, signed(3), { now: '2026-01-31T00:00:00.000Z', occurredAt: '2026-01-31T00:00:00.000Z' });
    expect(e).toEqual({ type: 'AgreementDenounced', data: { byParty: 'VEN', reason: 'notice', noticeAt: '2026-01-31T00:00:00.000Z', effectiveAt: '2026-04-30T00:00:00.000Z' } });
    const s = evolveAgreement(signed(3), { ...e!, occurredAt: '2026-01-31T00:00:00.000Z' });
    const add: AgreementCommand = { type: 'AddCommitment', commitment: { commitmentId: 'pipe', title: 'Pipe', dueDate: '2026-12-31', responsible: { party: 'RUS', institution: 'Rosneft' } } };
    expect(decideAgreement(add, s, { now: '2026-04-29T23:59:59.999Z', occurredAt: '2026-04-29T23:59:59.999Z' })).toHaveLength(1);
    expect(() => decideAgreement(add, s, { now: '2026-04-30T00:00:00.000Z', occurredAt: '2026-04-30T00:00:00.000Z' })).toThrow(/terminated since 2026-04-30/);
  });
});
