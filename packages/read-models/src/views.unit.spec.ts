// What the API shows of a document as of an instant: status, progress, counts, the next review
// and a review's agenda, read from a memory store filled the way the projector fills it.
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '@cm/event-store';
import type { AgreementDoc } from './documents.js';
import { createMemoryReadStore } from './read-store.js';
import { projectInto } from './testing/project-into.js';
import { createEventLog } from './testing/stored-events.js';
import { agreementDetail, agreementSummary, reviewAgenda, reviewView } from './views.js';

async function storeWith(events: StoredEvent[]) {
  const store = createMemoryReadStore();
  await projectInto(store, events);
  return store;
}

async function agreementDoc(events: StoredEvent[], id: string): Promise<AgreementDoc> {
  const store = await storeWith(events);
  const doc = (await store.getAgreements([id])).get(id);
  if (!doc) throw new Error(`no document for ${id}`);
  return doc;
}

const at = (date: string) => `${date}T12:00:00.000Z`;

/** An agreement with three commitments due in March, June and December 2026. */
function threeCommitments() {
  const log = createEventLog();
  const events = [
    log.signed('health', { title: 'Agreement on health', sector: 'health', signedAt: '2025-11-28', session: { name: 'CIAN XIX', date: '2025-11-28' } }),
    log.added('health', 'vaccines', { dueDate: '2026-03-31' }),
    log.added('health', 'clinic', { dueDate: '2026-06-30' }),
    log.added('health', 'training', { dueDate: '2026-12-31' }),
  ];
  return { log, events };
}

describe('agreementSummary', () => {
  it('is signed, with no progress, while nothing has started', async () => {
    const { events } = threeCommitments();
    const s = agreementSummary(await agreementDoc(events, 'health'), at('2026-01-10'));

    expect(s).toMatchObject({ id: 'health', title: 'Agreement on health', sector: 'health', status: 'signed', progress: 0, nextReviewAt: null, lastReviewedAt: null });
    expect(s.session).toEqual({ name: 'CIAN XIX', date: '2025-11-28' });
    expect(s.commitmentCounts).toEqual({ total: 3, pending: 3, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0, overdue: 0 });
  });

  it('is in implementation once progress is reported, with progress the mean over commitments', async () => {
    const { log, events } = threeCommitments();
    events.push(log.progress('health', 'clinic', 40));
    const s = agreementSummary(await agreementDoc(events, 'health'), at('2026-01-10'));

    expect(s.status).toBe('in_implementation');
    expect(s.progress).toBe(13.3);
    expect(s.commitmentCounts).toMatchObject({ pending: 2, in_progress: 1, overdue: 0 });
  });

  it('turns delayed from the day after a due date passes, for the same document', async () => {
    const { log, events } = threeCommitments();
    events.push(log.progress('health', 'clinic', 40));
    const doc = await agreementDoc(events, 'health');

    expect(agreementSummary(doc, '2026-03-31T23:59:59.999Z').status).toBe('in_implementation');
    expect(agreementSummary(doc, '2026-03-31T23:59:59.999Z').commitmentCounts.overdue).toBe(0);
    expect(agreementSummary(doc, '2026-04-01T00:00:00.000Z').status).toBe('delayed');
    expect(agreementSummary(doc, '2026-04-01T00:00:00.000Z').commitmentCounts.overdue).toBe(1);
    expect(agreementSummary(doc, at('2027-01-01')).commitmentCounts.overdue).toBe(3);
  });

  it('is delayed when a commitment is delayed, even before any due date passes', async () => {
    const { log, events } = threeCommitments();
    events.push(log.delayed('health', 'vaccines', '2026-03-31', '2026-05-31'));
    const s = agreementSummary(await agreementDoc(events, 'health'), at('2026-01-10'));

    expect(s.status).toBe('delayed');
    expect(s.commitmentCounts).toMatchObject({ delayed: 1, pending: 2, overdue: 0 });
  });

  it('is implemented when every non-cancelled commitment is, with progress 100 and nothing overdue', async () => {
    const { log, events } = threeCommitments();
    events.push(
      log.progress('health', 'clinic', 30),
      log.implemented('health', 'vaccines'),
      log.implemented('health', 'clinic'),
      log.cancelled('health', 'training'),
    );
    const s = agreementSummary(await agreementDoc(events, 'health'), at('2027-06-01'));

    expect(s.status).toBe('implemented');
    expect(s.progress).toBe(100);
    expect(s.commitmentCounts).toEqual({ total: 3, pending: 0, in_progress: 0, delayed: 0, implemented: 2, cancelled: 1, overdue: 0 });
  });

  it('is terminated once terminated, whatever its commitments', async () => {
    const { log, events } = threeCommitments();
    events.push(log.delayed('health', 'vaccines', '2026-03-31', '2026-05-31'), log.terminated('health'));
    const s = agreementSummary(await agreementDoc(events, 'health'), at('2026-08-01'));

    expect(s.status).toBe('terminated');
  });

  it("carries the document's revision and updatedAt", async () => {
    const { log, events } = threeCommitments();
    const last = log.progress('health', 'clinic', 10);
    events.push(last);
    const s = agreementSummary(await agreementDoc(events, 'health'), at('2026-01-10'));

    expect(s.revision).toBe(4);
    expect(s.updatedAt).toBe(last.metadata.recordedAt);
  });
});

describe('nextReviewAt', () => {
  const FEB = '2026-02-10T09:00:00.000Z';
  const MAR = '2026-03-10T09:00:00.000Z';
  const APR = '2026-04-10T09:00:00.000Z';
  const MAY = '2026-05-10T09:00:00.000Z';

  async function withReviews() {
    const log = createEventLog();
    return agreementDoc([
      log.signed('health'),
      log.scheduled('may', MAY, ['health']),
      log.scheduled('april', APR, ['health']),
      log.scheduled('march', MAR, ['health']),
      log.scheduled('february', FEB, ['health']),
      log.reviewCancelled('april'),
      log.held('february', FEB),
    ], 'health');
  }

  it('is the earliest scheduled review after the instant', async () => {
    const doc = await withReviews();
    expect(agreementSummary(doc, at('2026-01-10')).nextReviewAt).toBe(MAR);
  });

  it('skips a review at the instant itself, and cancelled and held reviews', async () => {
    const doc = await withReviews();
    expect(agreementSummary(doc, MAR).nextReviewAt).toBe(MAY);
    expect(agreementSummary(doc, at('2026-03-20')).nextReviewAt).toBe(MAY);
  });

  it('is null once every scheduled review is past', async () => {
    const doc = await withReviews();
    expect(agreementSummary(doc, at('2026-05-11')).nextReviewAt).toBeNull();
  });
});

describe('agreementDetail', () => {
  it('shows each commitment with overdue as of the instant, the reviews and the last assessments', async () => {
    const { log, events } = threeCommitments();
    events.push(
      log.delayed('health', 'clinic', '2026-06-30', '2026-09-30'),
      log.scheduled('spring', '2026-04-15T09:00:00.000Z', ['health'], { title: 'Spring review' }),
      log.held('spring', '2026-04-15T11:00:00.000Z', [{ agreementId: 'health', rating: 'at_risk' }]),
      log.reviewed('health', 'spring', '2026-04-15T11:00:00.000Z', [{ agreementId: 'health', rating: 'at_risk' }]),
    );
    const d = agreementDetail(await agreementDoc(events, 'health'), at('2026-04-20'));

    expect(d.status).toBe('delayed');
    expect(d.commitments.map((c) => [c.id, c.status, c.overdue, c.dueDate, c.originalDueDate])).toEqual([
      ['vaccines', 'pending', true, '2026-03-31', '2026-03-31'],
      ['clinic', 'delayed', false, '2026-09-30', '2026-06-30'],
      ['training', 'pending', false, '2026-12-31', '2026-12-31'],
    ]);
    expect(d.commitments[1]!.delays).toHaveLength(1);
    expect(d.reviews).toEqual([{ id: 'spring', title: 'Spring review', scheduledFor: '2026-04-15T09:00:00.000Z', status: 'held' }]);
    expect(d.lastReviewedAt).toBe('2026-04-15T11:00:00.000Z');
    expect(d.lastAssessments).toEqual([{ agreementId: 'health', rating: 'at_risk' }]);
    expect(d.terminated).toBeNull();
  });
});

describe('reviewAgenda', () => {
  const MEETING = '2026-06-15T09:00:00.000Z';
  const AS_OF = at('2026-03-15');

  async function agenda() {
    const log = createEventLog();
    const store = await storeWith([
      log.signed('health', { title: 'Agreement on health' }),
      log.added('health', 'overdue', { dueDate: '2026-02-28' }),
      log.added('health', 'delayed', { dueDate: '2026-05-31' }),
      log.added('health', 'soon', { dueDate: '2026-06-10' }),
      log.added('health', 'later', { dueDate: '2026-08-31' }),
      log.added('health', 'done', { dueDate: '2026-04-30' }),
      log.added('health', 'dropped', { dueDate: '2026-01-31' }),
      log.progress('health', 'later', 50),
      log.delayed('health', 'delayed', '2026-05-31', '2026-09-30'),
      log.implemented('health', 'done'),
      log.cancelled('health', 'dropped'),
      log.signed('air', { title: 'Air services' }),
      log.added('air', 'route', { dueDate: '2026-12-31' }),
      log.scheduled('june', MEETING, ['health', 'air', 'ghost']),
    ]);
    const review = (await store.getReviews(['june'])).get('june')!.review;
    const agreements = await store.getAgreements(review.agreementIds);
    return reviewAgenda(review, agreements, AS_OF);
  }

  it('lists, per agreement in scope, only the delayed, overdue and due-before-meeting commitments', async () => {
    const items = await agenda();
    const health = items.find((i) => i.agreementId === 'health')!;

    expect(health.commitments.map((c) => c.id).sort()).toEqual(['delayed', 'overdue', 'soon']);
    expect(health.commitments.find((c) => c.id === 'overdue')!.overdue).toBe(true);
    expect(health.commitments.find((c) => c.id === 'soon')!.overdue).toBe(false);
    expect(health).toMatchObject({ title: 'Agreement on health', status: 'delayed' });
    // Mean over the five non-cancelled commitments: 50 (later) + 100 (done).
    expect(health.progress).toBe(30);
  });

  it('keeps an agreement with nothing to discuss, in scope order, and skips one with no document', async () => {
    const items = await agenda();
    expect(items.map((i) => i.agreementId)).toEqual(['health', 'air']);
    expect(items[1]!.commitments).toEqual([]);
  });
});

describe('reviewAgenda: due before the meeting, at the day boundary', () => {
  // The agenda is read a month ahead: nothing here is overdue, so only the meeting's day decides.
  const AS_OF = at('2026-06-10');

  async function dueOnAgenda(scheduledFor: string) {
    const log = createEventLog();
    const store = await storeWith([
      log.signed('health', { title: 'Agreement on health' }),
      log.added('health', 'eve', { dueDate: '2026-07-09' }),
      log.added('health', 'same-day', { dueDate: '2026-07-10' }),
      log.added('health', 'next-day', { dueDate: '2026-07-11' }),
      log.scheduled('july', scheduledFor, ['health']),
    ]);
    const review = (await store.getReviews(['july'])).get('july')!.review;
    const [health] = reviewAgenda(review, await store.getAgreements(review.agreementIds), AS_OF);
    return health!.commitments.map((c) => c.id).sort();
  }

  it('lists a commitment due the day of the meeting, whether it meets at 00:30 or 23:30 UTC', async () => {
    expect(await dueOnAgenda('2026-07-10T00:30:00.000Z')).toEqual(['eve', 'same-day']);
    expect(await dueOnAgenda('2026-07-10T23:30:00.000Z')).toEqual(['eve', 'same-day']);
  });

  it('takes the meeting day in UTC when the instant carries an offset', async () => {
    // 2026-07-10T00:30Z, written in Caracas time: the day before locally.
    expect(await dueOnAgenda('2026-07-09T20:30:00-04:00')).toEqual(['eve', 'same-day']);
    // 2026-07-10T23:30Z, written in Moscow time: the day after locally.
    expect(await dueOnAgenda('2026-07-11T02:30:00+03:00')).toEqual(['eve', 'same-day']);
  });
});

describe('reviewView', () => {
  it('shows the review as rescheduled, with its sequence and revision', async () => {
    const log = createEventLog();
    const store = await storeWith([
      log.scheduled('june', '2026-06-15T09:00:00.000Z', ['health'], { title: 'June review' }),
      log.rescheduled('june', '2026-06-15T09:00:00.000Z', '2026-06-22T09:00:00.000Z'),
    ]);
    const v = reviewView((await store.getReviews(['june'])).get('june')!);

    expect(v).toMatchObject({ id: 'june', title: 'June review', scheduledFor: '2026-06-22T09:00:00.000Z', status: 'scheduled', sequence: 1, revision: 1, agreementIds: ['health'] });
  });
});
