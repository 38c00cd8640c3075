// Who may do what: the role grants, and an editor's limits to its parties, as given/when/then.
import { describe, expect, it } from 'vitest';
import { ANONYMOUS, allows, checkAgreementCommand, checkReviewScope, rolesWith, type Principal } from './access.js';
import { correctionTargetOf, evolveAgreement, initialAgreementState, type AgreementCommand, type AgreementState } from './agreement-decider.js';
import { ForbiddenError } from './errors.js';
import type { AgreementEvent, Timed } from './events.js';

const at = '2025-11-28T10:00:00.000Z';
const veEditor: Principal = { name: 'mfa-ven', role: 'editor', parties: ['VEN'] };
const admin: Principal = { name: 'ops', role: 'admin', parties: [] };

function agreementWith(events: Timed<AgreementEvent>[]): AgreementState {
  return events.reduce(evolveAgreement, initialAgreementState());
}
const signed = (parties: string[]): Timed<AgreementEvent> => ({
  type: 'AgreementSigned', occurredAt: at,
  data: { agreementId: 'energy-2025', title: 'Energy', kind: 'agreement', sector: 'energy', parties, signedAt: '2025-11-28' },
});
const added = (commitmentId: string, party: string): Timed<AgreementEvent> => ({
  type: 'CommitmentAdded', occurredAt: at,
  data: { agreementId: 'energy-2025', commitmentId, title: commitmentId, dueDate: '2026-06-30', responsible: { party, institution: `Ministry of ${party}` } },
});
const reported = (commitmentId: string, percent: number): Timed<AgreementEvent> => ({
  type: 'ProgressReported', occurredAt: at, data: { commitmentId, percent },
});

// VEN-RUS agreement; revision 1 = the VEN commitment, 2 = the RUS one, 3 = RUS progress.
const venRus = agreementWith([signed(['VEN', 'RUS']), added('ven-grid', 'VEN'), added('rus-turbines', 'RUS'), reported('rus-turbines', 40)]);
const rusChn = agreementWith([signed(['RUS', 'CHN']), added('rus-pipe', 'RUS')]);

function refusal(principal: Principal, command: AgreementCommand, state: AgreementState) {
  try {
    checkAgreementCommand(principal, command, state);
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(ForbiddenError);
    return err as ForbiddenError;
  }
}

const sign = (parties: string[], responsibleParties: string[]): AgreementCommand => ({
  type: 'SignAgreement', agreementId: 'x-2025', title: 'X', kind: 'agreement', sector: 'energy', parties, signedAt: '2025-11-28',
  commitments: responsibleParties.map((p, i) => ({ commitmentId: `c-${i}`, title: 'c', dueDate: '2026-01-01', responsible: { party: p, institution: 'Ministry' } })),
});

describe('role grants', () => {
  it('gives each role its reach', () => {
    expect(rolesWith('read')).toEqual(['viewer', 'editor', 'auditor', 'admin']);
    expect(rolesWith('command')).toEqual(['editor', 'admin']);
    expect(rolesWith('audit')).toEqual(['auditor', 'admin']);
    expect(allows({ ...veEditor, role: 'viewer' }, 'command')).toBe(false);
    expect(allows({ ...veEditor, role: 'auditor' }, 'command')).toBe(false);
    expect(allows(veEditor, 'audit')).toBe(false);
    expect(allows(ANONYMOUS, 'audit')).toBe(true);
  });
});

describe('an editor for VEN', () => {
  it('records an agreement of VEN whose commitments are all VEN\'s', () => {
    expect(refusal(veEditor, sign(['VEN', 'RUS'], ['VEN', 'VEN']), initialAgreementState())).toBeNull();
  });

  it('may not record an agreement between other parties, nor a commitment of the other party', () => {
    expect(refusal(veEditor, sign(['RUS', 'CHN'], []), initialAgreementState())?.errors).toEqual([{ path: 'parties', message: 'must be one of VEN' }]);
    const e = refusal(veEditor, sign(['VEN', 'RUS'], ['VEN', 'RUS']), initialAgreementState());
    expect(e?.code).toBe('outside_parties');
    expect(e?.errors).toEqual([{ path: 'commitments.1.responsible.party', message: 'must be one of VEN' }]);
  });

  it('changes VEN\'s commitments, not RUS\'s', () => {
    expect(refusal(veEditor, { type: 'ReportProgress', commitmentId: 'ven-grid', percent: 10 }, venRus)).toBeNull();
    for (const command of [
      { type: 'ReportProgress', commitmentId: 'rus-turbines', percent: 50 },
      { type: 'ImplementCommitment', commitmentId: 'rus-turbines' },
      { type: 'DelayCommitment', commitmentId: 'rus-turbines', reason: 'r', newDueDate: '2027-01-01' },
      { type: 'CancelCommitment', commitmentId: 'rus-turbines', reason: 'r' },
    ] satisfies AgreementCommand[]) {
      expect(refusal(veEditor, command, venRus)?.message).toMatch(/rus-turbines, for which RUS is responsible/);
    }
  });

  it('adds commitments of VEN only, and corrects only events about VEN\'s commitments', () => {
    const commitment = (party: string) => ({ commitmentId: 'n', title: 'n', dueDate: '2026-01-01', responsible: { party, institution: 'M' } });
    expect(refusal(veEditor, { type: 'AddCommitment', commitment: commitment('VEN') }, venRus)).toBeNull();
    expect(refusal(veEditor, { type: 'AddCommitment', commitment: commitment('RUS') }, venRus)?.errors[0]?.path).toBe('responsible.party');
    expect(refusal(veEditor, { type: 'CorrectEvent', revision: 1, target: correctionTargetOf(added('ven-grid', 'VEN')), dueDate: '2026-07-01', reason: 'typo' }, venRus)).toBeNull();
    expect(refusal(veEditor, { type: 'CorrectEvent', revision: 3, target: correctionTargetOf(reported('rus-turbines', 40)), percent: 45, reason: 'typo' }, venRus)?.message).toMatch(/correct commitment rus-turbines/);
  });

  it('touches nothing in an agreement VEN is not party to, and may terminate one it is', () => {
    expect(refusal(veEditor, { type: 'TerminateAgreement', reason: 'r' }, rusChn)?.message).toMatch(/change agreement energy-2025 between RUS and CHN/);
    expect(refusal(veEditor, { type: 'ReportProgress', commitmentId: 'rus-pipe', percent: 5 }, rusChn)).not.toBeNull();
    expect(refusal(veEditor, { type: 'TerminateAgreement', reason: 'r' }, venRus)).toBeNull();
  });

  it('leaves unknown agreements and commitments to the decider (404, not 403)', () => {
    expect(refusal(veEditor, { type: 'ReportProgress', commitmentId: 'nope', percent: 5 }, initialAgreementState())).toBeNull();
    expect(refusal(veEditor, { type: 'ReportProgress', commitmentId: 'nope', percent: 5 }, venRus)).toBeNull();
  });

  it('manages reviews of VEN\'s agreements only', () => {
    expect(() => checkReviewScope(veEditor, [{ id: 'a', parties: ['VEN', 'RUS'] }])).not.toThrow();
    expect(() => checkReviewScope(veEditor, [{ id: 'a', parties: ['VEN', 'RUS'] }, { id: 'b', parties: ['RUS', 'CHN'] }])).toThrow(/review of agreement b/);
  });
});

describe('an admin', () => {
  it('is not limited by parties', () => {
    expect(refusal(admin, sign(['RUS', 'CHN'], ['RUS']), initialAgreementState())).toBeNull();
    expect(refusal(admin, { type: 'ReportProgress', commitmentId: 'rus-pipe', percent: 5 }, rusChn)).toBeNull();
    expect(() => checkReviewScope(admin, [{ id: 'b', parties: ['RUS', 'CHN'] }])).not.toThrow();
  });
});
