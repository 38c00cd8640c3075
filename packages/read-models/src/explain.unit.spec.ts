// explainCommitment: the events that moved a commitment's status, progress or due date, each
// with only what it moved, folded from a hand-built agreement stream.
import { describe, expect, it } from 'vitest';
import { agreementStream } from '@cm/domain';
import { explainCommitment } from './explain.js';
import { createEventLog } from './testing/stored-events.js';

const day = (d: string) => `${d}T09:00:00.000Z`;

/** Signed with two commitments; `plant` is reported twice, delayed, reviewed, implemented. */
function plantStory() {
  const log = createEventLog();
  const events = [
    log.signed('health'),
    log.added('health', 'plant', { dueDate: '2026-06-30' }, { occurredAt: day('2026-01-02') }),
    log.added('health', 'clinic', { dueDate: '2026-09-30' }),
    log.progress('health', 'plant', 30, { occurredAt: day('2026-02-01') }),
    log.progress('health', 'clinic', 50),
    log.progress('health', 'plant', 60, { occurredAt: day('2026-03-01') }),
    log.delayed('health', 'plant', '2026-06-30', '2026-12-31', { occurredAt: day('2026-04-01') }),
    log.reviewed('health', 'rev-1', day('2026-04-10')),
    log.implemented('health', 'plant', { occurredAt: day('2026-05-01') }),
  ];
  return { log, events };
}

describe('explainCommitment', () => {
  it('lists, in order, each event that changed the commitment, with only what it changed', () => {
    const { events } = plantStory();
    const x = explainCommitment(events, 'plant');
    expect(x).not.toBeNull();
    expect(x!.steps.map((s) => [s.revision, s.type, s.changed])).toEqual([
      [1, 'CommitmentAdded', { status: { from: null, to: 'pending' }, progress: { from: null, to: 0 }, dueDate: { from: null, to: '2026-06-30' } }],
      [3, 'ProgressReported', { status: { from: 'pending', to: 'in_progress' }, progress: { from: 0, to: 30 } }],
      [5, 'ProgressReported', { progress: { from: 30, to: 60 } }],
      [6, 'CommitmentDelayed', { status: { from: 'in_progress', to: 'delayed' }, dueDate: { from: '2026-06-30', to: '2026-12-31' } }],
      [8, 'CommitmentImplemented', { status: { from: 'delayed', to: 'implemented' }, progress: { from: 60, to: 100 } }],
    ]);
    expect(x).toMatchObject({ agreementId: 'health', commitmentId: 'plant', revision: 8, current: { status: 'implemented', progress: 100, dueDate: '2026-12-31' } });
  });

  it('carries each step\'s envelope: position, both times and the actor', () => {
    const { events } = plantStory();
    const step = explainCommitment(events, 'plant')!.steps[2]!;
    expect(step).toMatchObject({ position: events[5]!.position, occurredAt: day('2026-03-01'), recordedAt: events[5]!.metadata.recordedAt, actor: 'test' });
  });

  it('leaves out events that changed nothing of the three: a same-figure report, another commitment, a review', () => {
    const log = createEventLog();
    const events = [log.signed('a1'), log.added('a1', 'c1'), log.progress('a1', 'c1', 40), log.progress('a1', 'c1', 40), log.added('a1', 'c2'), log.reviewed('a1', 'rev-1', day('2026-02-01'))];
    expect(explainCommitment(events, 'c1')!.steps.map((s) => s.revision)).toEqual([1, 2]);
    expect(explainCommitment(events, 'c2')!.steps.map((s) => s.revision)).toEqual([4]);
  });

  it('shows a correction as the step that moved the figure, from the mistaken value', () => {
    const log = createEventLog();
    const events = [
      log.signed('a1'),
      log.added('a1', 'c1', { dueDate: '2026-06-30' }),
      log.progress('a1', 'c1', 80),
      log.domain(agreementStream('a1'), { type: 'ProgressCorrected', data: { commitmentId: 'c1', correctsRevision: 2, percent: 8, reason: 'typo' } }),
      log.domain(agreementStream('a1'), { type: 'DueDateCorrected', data: { commitmentId: 'c1', correctsRevision: 1, dueDate: '2026-07-31', reason: 'wrong month' } }),
    ];
    const x = explainCommitment(events, 'c1')!;
    expect(x.steps.slice(2).map((s) => [s.type, s.changed])).toEqual([
      ['ProgressCorrected', { progress: { from: 80, to: 8 } }],
      ['DueDateCorrected', { dueDate: { from: '2026-06-30', to: '2026-07-31' } }],
    ]);
    expect(x.current).toEqual({ status: 'in_progress', progress: 8, dueDate: '2026-07-31' });
  });

  it('answers null for a commitment the agreement does not have, or an empty stream', () => {
    const { events } = plantStory();
    expect(explainCommitment(events, 'bridge')).toBeNull();
    expect(explainCommitment([], 'plant')).toBeNull();
  });
});
