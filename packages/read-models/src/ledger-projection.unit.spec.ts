// The ledger projection on hand-built stored events: what each event does to the agreement and
// review documents, and why replaying a batch after a crash can neither lose nor double anything.
import { describe, expect, it } from 'vitest';
import { foldAgreement, foldReview, type AgreementEvent, type ReviewEvent, type Timed } from '@cm/domain';
import type { StoredEvent } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc } from './documents.js';
import { documentsNeeded, projectBatch } from './ledger-projection.js';
import { createEventLog } from './testing/stored-events.js';

type Docs = { agreements: Map<string, AgreementDoc>; reviews: Map<string, ReviewDoc> };

const empty = (): Docs => ({ agreements: new Map(), reviews: new Map() });

/** What a read store holds after committing `changes` on top of `docs`. */
function merge(docs: Docs, changes: ProjectionChanges): Docs {
  return {
    agreements: new Map([...docs.agreements, ...changes.agreements]),
    reviews: new Map([...docs.reviews, ...changes.reviews]),
  };
}

/** Applies batches one after the other, as the projector does with its commits. */
function applyAll(...batches: StoredEvent[][]): Docs {
  return batches.reduce((docs, batch) => merge(docs, projectBatch(docs, batch)), empty());
}

const timed = <E>(e: StoredEvent) => ({ type: e.type, data: e.data, occurredAt: e.metadata.occurredAt }) as unknown as Timed<E>;

describe('projectBatch: agreement documents', () => {
  it('folds an agreement stream into the same state the domain folds', () => {
    const log = createEventLog();
    const events = [
      log.signed('health', { sector: 'health', parties: ['VEN', 'RUS'] }),
      log.added('health', 'clinic', { dueDate: '2026-06-30' }),
      log.added('health', 'vaccines', { dueDate: '2026-03-31', party: 'RUS', institution: 'Gamaleya Centre' }),
      log.added('health', 'training', { dueDate: '2026-12-31' }),
      log.progress('health', 'clinic', 40, { occurredAt: '2026-01-20T09:00:00.000Z' }),
      log.delayed('health', 'vaccines', '2026-03-31', '2026-09-30'),
      log.cancelled('health', 'training'),
    ];

    const doc = projectBatch(empty(), events).agreements.get('health')!;

    expect(doc.agreement).toEqual(foldAgreement(events.map(timed<AgreementEvent>)));
    expect(doc.agreement.commitments.map((c) => [c.id, c.status, c.progress, c.dueDate])).toEqual([
      ['clinic', 'in_progress', 40, '2026-06-30'],
      ['vaccines', 'delayed', 0, '2026-09-30'],
      ['training', 'cancelled', 0, '2026-12-31'],
    ]);
    // Progress is dated by when it happened in the world, not when it was recorded.
    expect(doc.agreement.commitments[0]!.lastUpdateAt).toBe('2026-01-20T09:00:00.000Z');
    expect(doc.agreement.commitments[1]!.originalDueDate).toBe('2026-03-31');
  });

  it("takes revision, position and updatedAt from the stream's last event, createdAt from its first", () => {
    const log = createEventLog();
    const first = log.signed('health');
    const other = log.signed('air');
    const second = log.added('health', 'clinic');
    const third = log.progress('health', 'clinic', 10);

    const first2 = applyAll([first, other, second]);
    const after = merge(first2, projectBatch(first2, [third]));
    const doc = after.agreements.get('health')!;

    expect(doc.revision).toBe(2);
    expect(doc.position).toBe(third.position);
    expect(doc.updatedAt).toBe(third.metadata.recordedAt);
    expect(doc.createdAt).toBe(first.metadata.recordedAt);
    expect(doc.createdAt).not.toBe(doc.updatedAt);
    // The other stream's document is untouched by events that are not its own.
    expect(after.agreements.get('air')!.revision).toBe(0);
    expect(after.agreements.get('air')!.position).toBe(other.position);
  });

  it('returns only the documents the batch changed', () => {
    const log = createEventLog();
    const docs = applyAll([log.signed('health'), log.signed('air')]);

    const changes = projectBatch(docs, [log.added('air', 'route')]);

    expect([...changes.agreements.keys()]).toEqual(['air']);
    expect(changes.reviews.size).toBe(0);
  });

  it('never modifies the documents it was given', () => {
    const log = createEventLog();
    const docs = applyAll([log.signed('health'), log.added('health', 'clinic'), log.scheduled('spring', '2026-04-01T09:00:00.000Z', ['health'])]);
    const before = structuredClone(docs);

    projectBatch(docs, [
      log.progress('health', 'clinic', 50),
      log.delayed('health', 'clinic', '2026-06-30', '2026-08-31'),
      log.rescheduled('spring', '2026-04-01T09:00:00.000Z', '2026-05-01T09:00:00.000Z'),
      log.held('spring', '2026-05-01T11:00:00.000Z'),
    ]);

    expect(docs).toEqual(before);
  });

  it('creates no document for an agreement event whose agreement was never signed', () => {
    const log = createEventLog();
    const changes = projectBatch(empty(), [log.added('ghost', 'clinic'), log.progress('ghost', 'clinic', 30)]);
    expect(changes.agreements.size).toBe(0);
  });
});

describe('projectBatch: exactly once in effect', () => {
  it('skips every event at or below a document revision: replaying a batch changes nothing', () => {
    const log = createEventLog();
    const batch = [
      log.signed('health'),
      log.added('health', 'clinic'),
      log.delayed('health', 'clinic', '2026-06-30', '2026-08-31'),
      log.scheduled('spring', '2026-04-01T09:00:00.000Z', ['health']),
      log.rescheduled('spring', '2026-04-01T09:00:00.000Z', '2026-05-01T09:00:00.000Z'),
      log.reminderSent('spring', '2026-05-01T09:00:00.000Z', 'desk@example.org', '2026-04-24T09:00:00.000Z'),
    ];
    const once = applyAll(batch);

    const replay = projectBatch(once, batch);

    expect(replay.agreements.size).toBe(0);
    expect(replay.reviews.size).toBe(0);
    expect(merge(once, replay)).toEqual(once);
    const health = once.agreements.get('health')!.agreement;
    expect(health.commitments).toHaveLength(1);
    expect(health.commitments[0]!.delays).toHaveLength(1);
    expect(once.reviews.get('spring')!.review.reminders).toHaveLength(1);
  });

  it('applies only the new events of a batch that overlaps one already applied', () => {
    const log = createEventLog();
    const e = [
      log.signed('health'),
      log.added('health', 'clinic'),
      log.added('health', 'vaccines'),
      log.delayed('health', 'clinic', '2026-06-30', '2026-08-31'),
      log.added('health', 'training'),
      log.delayed('health', 'clinic', '2026-08-31', '2026-10-31'),
    ];

    const inOne = applyAll(e);
    const overlapping = applyAll(e.slice(0, 4), e.slice(2));

    expect(overlapping).toEqual(inOne);
    const clinic = overlapping.agreements.get('health')!.agreement.commitments.find((c) => c.id === 'clinic')!;
    expect(overlapping.agreements.get('health')!.agreement.commitments.map((c) => c.id)).toEqual(['clinic', 'vaccines', 'training']);
    expect(clinic.delays.map((d) => d.newDueDate)).toEqual(['2026-08-31', '2026-10-31']);
  });

  it('does not let a replayed ReviewScheduled undo a later reschedule on the agreements', () => {
    const log = createEventLog();
    const scheduled = log.scheduled('spring', '2026-04-01T09:00:00.000Z', ['health']);
    const docs = applyAll([log.signed('health'), scheduled, log.rescheduled('spring', '2026-04-01T09:00:00.000Z', '2026-05-01T09:00:00.000Z')]);

    const replay = projectBatch(docs, [scheduled]);

    expect(replay.agreements.size).toBe(0);
    expect(replay.reviews.size).toBe(0);
    expect(docs.agreements.get('health')!.reviews.map((r) => r.scheduledFor)).toEqual(['2026-05-01T09:00:00.000Z']);
  });
});

describe('projectBatch: reviews and the references agreements keep to them', () => {
  const APRIL = '2026-04-01T09:00:00.000Z';
  const JUNE = '2026-06-01T09:00:00.000Z';

  function twoReviews() {
    const log = createEventLog();
    const docs = applyAll([
      log.signed('health'),
      log.signed('air'),
      log.signed('science'),
      log.signed('energy'),
      // Scheduled in the opposite order of their dates, so sorting is visible.
      log.scheduled('june-review', JUNE, ['health', 'air'], { title: 'June review' }),
      log.scheduled('april-review', APRIL, ['health', 'science', 'ghost'], { title: 'April review' }),
    ]);
    return { log, docs };
  }

  it('adds a reference to each agreement in scope, sorted by scheduledFor', () => {
    const { docs } = twoReviews();

    expect(docs.agreements.get('health')!.reviews).toEqual([
      { id: 'april-review', title: 'April review', scheduledFor: APRIL, status: 'scheduled' },
      { id: 'june-review', title: 'June review', scheduledFor: JUNE, status: 'scheduled' },
    ]);
    expect(docs.agreements.get('air')!.reviews.map((r) => r.id)).toEqual(['june-review']);
    expect(docs.agreements.get('science')!.reviews.map((r) => r.id)).toEqual(['april-review']);
    expect(docs.agreements.get('energy')!.reviews).toEqual([]);
    // An agreement in scope that does not exist gets no document.
    expect(docs.agreements.has('ghost')).toBe(false);
  });

  it('orders references with the same date by review id', () => {
    const log = createEventLog();
    const docs = applyAll([
      log.signed('health'),
      log.scheduled('zeta', APRIL, ['health']),
      log.scheduled('alpha', APRIL, ['health']),
    ]);
    expect(docs.agreements.get('health')!.reviews.map((r) => r.id)).toEqual(['alpha', 'zeta']);
  });

  it('moves and re-sorts the references when a review is rescheduled', () => {
    const { log, docs } = twoReviews();
    const JULY = '2026-07-01T09:00:00.000Z';

    const changes = projectBatch(docs, [log.rescheduled('april-review', APRIL, JULY)]);

    expect([...changes.agreements.keys()].sort()).toEqual(['health', 'science']);
    expect(changes.agreements.get('health')!.reviews.map((r) => [r.id, r.scheduledFor])).toEqual([
      ['june-review', JUNE],
      ['april-review', JULY],
    ]);
    // Only the reference moves: the agreement's own revision and position stay its stream's.
    expect(changes.agreements.get('health')!.revision).toBe(docs.agreements.get('health')!.revision);
    expect(changes.agreements.get('health')!.position).toBe(docs.agreements.get('health')!.position);
    expect(changes.reviews.get('april-review')!.review.sequence).toBe(1);
  });

  it('marks the references cancelled or held', () => {
    const { log, docs } = twoReviews();

    const after = merge(docs, projectBatch(docs, [
      log.reviewCancelled('april-review'),
      log.held('june-review', '2026-06-01T11:00:00.000Z', [{ agreementId: 'air', rating: 'on_track' }]),
    ]));

    expect(after.agreements.get('health')!.reviews.map((r) => [r.id, r.status])).toEqual([
      ['april-review', 'cancelled'],
      ['june-review', 'held'],
    ]);
    expect(after.agreements.get('science')!.reviews[0]!.status).toBe('cancelled');
    expect(after.agreements.get('air')!.reviews[0]!.status).toBe('held');
    expect(after.reviews.get('june-review')!.review.assessments).toEqual([{ agreementId: 'air', rating: 'on_track' }]);
  });

  it('records a ReminderSent on the review without touching any agreement', () => {
    const { log, docs } = twoReviews();
    const reminder = log.reminderSent('june-review', JUNE, 'desk@example.org', '2026-05-25T09:00:00.000Z');

    const changes = projectBatch(docs, [reminder]);

    expect(changes.agreements.size).toBe(0);
    const review = changes.reviews.get('june-review')!;
    expect(review.review.reminders).toEqual([{ scheduledFor: JUNE, offset: '7d', email: 'desk@example.org', sentAt: '2026-05-25T09:00:00.000Z' }]);
    expect(review.revision).toBe(1);
    expect(review.position).toBe(reminder.position);
    expect(review.updatedAt).toBe(reminder.metadata.recordedAt);
  });

  it('folds a review stream into the same state the domain folds', () => {
    const log = createEventLog();
    const events = [
      log.scheduled('spring', APRIL, ['health']),
      log.rescheduled('spring', APRIL, JUNE),
      log.reminderSent('spring', JUNE, 'desk@example.org', '2026-05-25T09:00:00.000Z'),
      log.held('spring', '2026-06-01T12:00:00.000Z'),
    ];

    const doc = projectBatch(empty(), events).reviews.get('spring')!;

    expect(doc.review).toEqual(foldReview(events.map(timed<ReviewEvent>)));
    expect(doc).toMatchObject({ revision: 3, position: events[3]!.position, createdAt: events[0]!.metadata.recordedAt, updatedAt: events[3]!.metadata.recordedAt });
  });

  it('keeps the references when later agreement events change the document', () => {
    const { log, docs } = twoReviews();

    const changes = projectBatch(docs, [log.added('health', 'clinic'), log.terminated('health')]);

    const health = changes.agreements.get('health')!;
    expect(health.reviews.map((r) => r.id)).toEqual(['april-review', 'june-review']);
    expect(health.agreement.terminated).not.toBeNull();
  });

  it('adds the reference to an agreement signed earlier in the same batch', () => {
    const log = createEventLog();
    const changes = projectBatch(empty(), [log.signed('health'), log.scheduled('spring', APRIL, ['health'])]);
    expect(changes.agreements.get('health')!.reviews.map((r) => r.id)).toEqual(['spring']);
  });
});

describe('projectBatch: events the ledger does not know', () => {
  it('ignores unknown streams and types, and events on the wrong kind of stream', () => {
    const log = createEventLog();
    const signedData = log.signed('health').data;
    const scheduledData = log.scheduled('spring', '2026-04-01T09:00:00.000Z', ['health']).data;

    const changes = projectBatch(empty(), [
      log.raw('settings-main', 'AgreementSigned', signedData),
      log.raw('agreements-health', 'AgreementSigned', signedData),
      log.raw('review-spring', 'AgreementSigned', signedData),
      log.raw('agreement-spring', 'ReviewScheduled', scheduledData),
      log.raw('agreement-health', 'AgreementRenamed', { title: 'x' }),
    ]);

    expect(changes.agreements.size).toBe(0);
    expect(changes.reviews.size).toBe(0);
  });

  it('goes on past an unknown event to the known ones after it', () => {
    const log = createEventLog();
    const batch = [log.signed('health'), log.raw('agreement-health', 'AgreementRenamed', { title: 'x' }), log.added('health', 'clinic')];
    const last = batch[2]!;
    expect(last.revision).toBe(2);
    const changes = projectBatch(empty(), batch);

    const doc = changes.agreements.get('health')!;
    expect(doc.agreement.commitments.map((c) => c.id)).toEqual(['clinic']);
    expect(doc.revision).toBe(2);
    expect(doc.position).toBe(last.position);
  });
});

describe('documentsNeeded', () => {
  it('asks for the agreement of each agreement event and the review of each review event', () => {
    const log = createEventLog();
    const needed = documentsNeeded([
      log.signed('health'),
      log.progress('air', 'route', 20),
      log.reminderSent('spring', '2026-04-01T09:00:00.000Z', 'desk@example.org', '2026-03-25T09:00:00.000Z'),
      log.raw('settings-main', 'Whatever', {}),
    ], new Map());

    expect([...needed.agreementIds].sort()).toEqual(['air', 'health']);
    expect([...needed.reviewIds]).toEqual(['spring']);
  });

  it("asks for the agreements in a ReviewScheduled's scope", () => {
    const log = createEventLog();
    const needed = documentsNeeded([log.scheduled('spring', '2026-04-01T09:00:00.000Z', ['health', 'air'])], new Map());
    expect([...needed.agreementIds].sort()).toEqual(['air', 'health']);
    expect([...needed.reviewIds]).toEqual(['spring']);
  });

  it("asks for the agreements in a loaded review's scope for its later events", () => {
    const log = createEventLog();
    const docs = applyAll([log.signed('health'), log.signed('air'), log.scheduled('spring', '2026-04-01T09:00:00.000Z', ['health', 'air'])]);
    const rescheduled = log.rescheduled('spring', '2026-04-01T09:00:00.000Z', '2026-05-01T09:00:00.000Z');

    // First round: the review is not loaded yet, so only the review itself is known.
    expect([...documentsNeeded([rescheduled], new Map()).agreementIds]).toEqual([]);
    // Second round, with the review loaded: its scope.
    expect([...documentsNeeded([rescheduled], docs.reviews).agreementIds].sort()).toEqual(['air', 'health']);
  });
});
