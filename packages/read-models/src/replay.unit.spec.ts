// Replaying a stream to an instant of the world: which events are in force at `effectiveAt`,
// and folding a selection that skips revisions without losing track of what corrections target.
import { describe, expect, it } from 'vitest';
import { agreementStream } from '@cm/domain';
import { effectiveEvents, foldAgreementEvents, foldReviewEvents } from './replay.js';
import { createEventLog } from './testing/stored-events.js';

const day = (d: string) => `${d}T09:00:00.000Z`;

describe('effectiveEvents', () => {
  it('keeps the events that occurred by the instant, however late they were recorded, in the order they occurred', () => {
    const log = createEventLog('2026-03-01T08:00:00.000Z');
    const events = [
      log.signed('a1', {}, { occurredAt: day('2026-01-01') }),
      log.added('a1', 'c1', {}, { occurredAt: day('2026-01-01') }),
      log.progress('a1', 'c1', 50, { occurredAt: day('2026-03-01') }),
      // Recorded after the report above, but it happened in February.
      log.progress('a1', 'c1', 20, { occurredAt: day('2026-02-01') }),
    ];
    expect(effectiveEvents(events, day('2026-02-15')).map((e) => e.revision)).toEqual([0, 1, 3]);
    expect(effectiveEvents(events, day('2026-02-01')).map((e) => e.revision)).toEqual([0, 1, 3]);
    expect(effectiveEvents(events, '2026-02-01T08:59:59.999Z').map((e) => e.revision)).toEqual([0, 1]);
    expect(effectiveEvents(events, day('2025-12-31'))).toEqual([]);
    // Both in force: February's report comes before March's, though recorded after it.
    expect(effectiveEvents(events, day('2026-03-15')).map((e) => e.revision)).toEqual([0, 1, 3, 2]);
  });

  it('shows, at an instant, the last report that had happened by then, not the last one recorded', () => {
    const log = createEventLog('2026-03-01T08:00:00.000Z');
    const events = [
      log.signed('a1', {}, { occurredAt: day('2026-01-01') }),
      log.added('a1', 'c1', {}, { occurredAt: day('2026-01-01') }),
      log.progress('a1', 'c1', 60, { occurredAt: day('2026-02-01') }),
      // A 40 % reached on 15 January, reported after the 60 % of 1 February.
      log.progress('a1', 'c1', 40, { occurredAt: day('2026-01-15') }),
      log.domain(agreementStream('a1'), { type: 'ProgressCorrected', data: { commitmentId: 'c1', correctsRevision: 3, percent: 45, reason: 'typo' } }, { occurredAt: day('2026-04-01') }),
    ];
    const progressAt = (at: string) => {
      const state = foldAgreementEvents(effectiveEvents(events, at));
      return state.exists ? state.commitments[0]!.progress : null;
    };
    expect(progressAt(day('2026-01-20'))).toBe(45); // the January report, as corrected
    expect(progressAt(day('2026-02-15'))).toBe(60);
  });

  it('counts a correction exactly when the event it corrects counts, whatever its own occurredAt', () => {
    const log = createEventLog();
    const events = [
      log.signed('a1', {}, { occurredAt: day('2026-01-01') }),
      log.added('a1', 'c1', {}, { occurredAt: day('2026-01-01') }),
      log.progress('a1', 'c1', 80, { occurredAt: day('2026-02-01') }),
      log.domain(agreementStream('a1'), { type: 'ProgressCorrected', data: { commitmentId: 'c1', correctsRevision: 2, percent: 8, reason: 'typo' } }, { occurredAt: day('2026-04-01') }),
    ];
    expect(effectiveEvents(events, day('2026-02-15')).map((e) => e.revision)).toEqual([0, 1, 2, 3]);
    expect(effectiveEvents(events, day('2026-01-15')).map((e) => e.revision)).toEqual([0, 1]);
  });
});

describe('foldAgreementEvents', () => {
  it('applies a correction to its target even when earlier revisions were left out', () => {
    const log = createEventLog();
    const events = [
      log.signed('a1', {}, { occurredAt: day('2026-01-01') }),
      log.added('a1', 'c1', {}, { occurredAt: day('2026-01-01') }),
      log.added('a1', 'late', {}, { occurredAt: day('2026-03-01') }),
      log.progress('a1', 'c1', 80, { occurredAt: day('2026-02-01') }),
      log.domain(agreementStream('a1'), { type: 'ProgressCorrected', data: { commitmentId: 'c1', correctsRevision: 3, percent: 8, reason: 'typo' } }),
    ];
    const selection = effectiveEvents(events, day('2026-02-15'));
    expect(selection.map((e) => e.revision)).toEqual([0, 1, 3, 4]);
    const state = foldAgreementEvents(selection);
    expect(state.exists && state.commitments.map((c) => [c.id, c.progress])).toEqual([['c1', 8]]);
  });

  it('has no agreement when the signature is not among the events', () => {
    const log = createEventLog();
    const [, added] = [log.signed('a1'), log.added('a1', 'c1')];
    expect(foldAgreementEvents([added!]).exists).toBe(false);
    expect(foldAgreementEvents([]).exists).toBe(false);
  });
});

describe('foldReviewEvents', () => {
  it('folds a review stream, skipping event types the ledger does not know', () => {
    const log = createEventLog();
    const events = [
      log.scheduled('r1', day('2026-05-01'), ['a1']),
      log.raw('review-r1', 'SomethingNew', {}),
      log.rescheduled('r1', day('2026-05-01'), day('2026-05-08')),
    ];
    const r = foldReviewEvents(events);
    expect(r.exists && [r.scheduledFor, r.sequence]).toEqual([day('2026-05-08'), 1]);
  });
});
