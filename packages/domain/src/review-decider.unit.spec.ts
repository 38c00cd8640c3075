// Every rule and every refusal of the review decider, as given/when/then.
import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from './errors.js';
import type { ReviewEvent, Timed } from './events.js';
import {
  decideReview,
  evolveReview,
  initialReviewState,
  type ExistingReview,
  type ReviewCommand,
  type ReviewState,
} from './review-decider.js';
import { createGiven } from './testing/given-when-then.js';

const given = createGiven({ decide: decideReview, evolve: evolveReview, initialState: initialReviewState });

const NOW = '2026-03-01T09:00:00.000Z';
const MEETING = '2026-03-20T09:00:00.000Z';
const LATER = '2026-03-27T09:00:00.000Z';
const attendees = [
  { email: 'ana@mppre.gob.ve', name: 'Ana', locale: 'es' as const },
  { email: 'ivan@mid.ru', locale: 'ru' as const },
];

const scheduled = (): Timed<ReviewEvent> => ({
  type: 'ReviewScheduled',
  occurredAt: NOW,
  data: { reviewId: 'review-march', title: 'CIAN follow-up', scheduledFor: MEETING, agreementIds: ['health-cooperation', 'air-connectivity'], attendees },
});
const rescheduled = (previousScheduledFor: string, scheduledFor: string): Timed<ReviewEvent> => ({
  type: 'ReviewRescheduled',
  occurredAt: NOW,
  data: { previousScheduledFor, scheduledFor },
});
const cancelled = (): Timed<ReviewEvent> => ({ type: 'ReviewCancelled', occurredAt: NOW, data: { reason: 'minister unavailable' } });
const held = (): Timed<ReviewEvent> => ({ type: 'ReviewHeld', occurredAt: MEETING, data: { heldAt: MEETING, assessments: [] } });
const reminderSent = (scheduledFor: string, offset: string, email: string): Timed<ReviewEvent> => ({
  type: 'ReminderSent',
  occurredAt: NOW,
  data: { scheduledFor, offset, email, sentAt: NOW },
});

const schedule = (overrides: Partial<Extract<ReviewCommand, { type: 'ScheduleReview' }>> = {}): ReviewCommand => ({
  type: 'ScheduleReview',
  now: NOW,
  reviewId: 'review-march',
  title: 'CIAN follow-up',
  scheduledFor: MEETING,
  agreementIds: ['health-cooperation', 'air-connectivity'],
  attendees,
  ...overrides,
});
const reschedule = (scheduledFor: string, now = NOW): ReviewCommand => ({ type: 'RescheduleReview', now, scheduledFor, reason: 'venue change' });
const cancel: ReviewCommand = { type: 'CancelReview', reason: 'minister unavailable' };
const outcome = (overrides: Partial<Extract<ReviewCommand, { type: 'RecordReviewOutcome' }>> = {}): ReviewCommand => ({
  type: 'RecordReviewOutcome',
  now: '2026-03-20T15:00:00.000Z',
  heldAt: MEETING,
  assessments: [{ agreementId: 'health-cooperation', rating: 'on_track' }],
  ...overrides,
});
const recordReminder = (scheduledFor: string, offset: string, email: string): ReviewCommand => ({
  type: 'RecordReminderSent',
  scheduledFor,
  offset,
  email,
  sentAt: NOW,
});

function existing(state: ReviewState): ExistingReview {
  if (!state.exists) throw new Error('expected the review to exist');
  return state;
}

describe('ScheduleReview', () => {
  it('records the review as the command gave it', () => {
    given([])
      .when(schedule({ location: 'Caracas' }))
      .then([
        {
          type: 'ReviewScheduled',
          data: { reviewId: 'review-march', title: 'CIAN follow-up', scheduledFor: MEETING, agreementIds: ['health-cooperation', 'air-connectivity'], attendees, location: 'Caracas' },
        },
      ]);
  });

  it('leaves a scheduled review at sequence 0 with no reminders sent', () => {
    const r = existing(given([]).when(schedule()).thenState());
    expect(r).toMatchObject({ status: 'scheduled', scheduledFor: MEETING, sequence: 0, reminders: [], heldAt: null, location: null });
  });

  it.each([
    ['in the past', '2026-02-28T09:00:00.000Z'],
    ['right now', NOW],
  ])('refuses a date %s, naming scheduledFor', (_label, scheduledFor) => {
    given([]).when(schedule({ scheduledFor })).thenThrows(ValidationError, 'invalid_input', ['scheduledFor']);
  });

  it('refuses a review without attendees', () => {
    given([]).when(schedule({ attendees: [] })).thenThrows(ValidationError, 'invalid_input', ['attendees']);
  });

  it('refuses the same e-mail address twice, whatever its case', () => {
    given([])
      .when(schedule({ attendees: [{ email: 'ana@mppre.gob.ve' }, { email: 'Ana@MPPRE.gob.ve' }] }))
      .thenThrows(ValidationError, 'invalid_input', ['attendees']);
  });

  it('refuses a review without agreements', () => {
    given([]).when(schedule({ agreementIds: [] })).thenThrows(ValidationError, 'invalid_input', ['agreementIds']);
  });

  it('refuses the same agreement twice', () => {
    given([]).when(schedule({ agreementIds: ['health-cooperation', 'health-cooperation'] })).thenThrows(ValidationError, 'invalid_input', ['agreementIds']);
  });

  it('lists every invalid field at once', () => {
    given([])
      .when(schedule({ scheduledFor: '2026-02-28T09:00:00.000Z', agreementIds: [], attendees: [] }))
      .thenThrows(ValidationError, 'invalid_input', ['scheduledFor', 'agreementIds', 'attendees']);
  });

  it('refuses to schedule the same review twice', () => {
    given([scheduled()]).when(schedule()).thenThrows(ConflictError, 'review_exists');
  });
});

describe('RescheduleReview', () => {
  it('records the move from the current date to the new one', () => {
    given([scheduled()])
      .when(reschedule(LATER))
      .then([{ type: 'ReviewRescheduled', data: { previousScheduledFor: MEETING, scheduledFor: LATER, reason: 'venue change' } }]);
  });

  it('moves the date and bumps the calendar sequence each time', () => {
    const once = existing(given([scheduled()]).when(reschedule(LATER)).thenState());
    expect(once).toMatchObject({ scheduledFor: LATER, sequence: 1, status: 'scheduled' });
    const twice = existing(given([scheduled(), rescheduled(MEETING, LATER)]).when(reschedule(MEETING)).thenState());
    expect(twice).toMatchObject({ scheduledFor: MEETING, sequence: 2 });
  });

  it('refuses a date in the past, naming scheduledFor', () => {
    given([scheduled()]).when(reschedule('2026-02-28T09:00:00.000Z')).thenThrows(ValidationError, 'invalid_input', ['scheduledFor']);
  });

  it('refuses the current date once it has passed', () => {
    given([scheduled()]).when(reschedule(MEETING, '2026-03-21T09:00:00.000Z')).thenThrows(ValidationError, 'invalid_input', ['scheduledFor']);
  });

  it('appends nothing when the date does not change', () => {
    given([scheduled()]).when(reschedule(MEETING)).thenNothing();
  });

  it('refuses a held review', () => {
    given([scheduled(), held()]).when(reschedule(LATER)).thenThrows(ConflictError, 'review_held');
  });

  it('refuses a cancelled review', () => {
    given([scheduled(), cancelled()]).when(reschedule(LATER)).thenThrows(ConflictError, 'review_cancelled');
  });

  it('refuses an unknown review', () => {
    given([]).when(reschedule(LATER)).thenThrows(NotFoundError, 'review_not_found');
  });
});

describe('CancelReview', () => {
  it('records the cancellation and its reason', () => {
    given([scheduled()]).when(cancel).then([{ type: 'ReviewCancelled', data: { reason: 'minister unavailable' } }]);
  });

  it('marks the review cancelled and bumps the calendar sequence', () => {
    const r = existing(given([scheduled()]).when(cancel).thenState());
    expect(r).toMatchObject({ status: 'cancelled', cancellationReason: 'minister unavailable', sequence: 1, scheduledFor: MEETING });
  });

  it('refuses to cancel twice', () => {
    given([scheduled(), cancelled()]).when(cancel).thenThrows(ConflictError, 'review_cancelled');
  });

  it('refuses a held review', () => {
    given([scheduled(), held()]).when(cancel).thenThrows(ConflictError, 'review_held');
  });

  it('refuses an unknown review', () => {
    given([]).when(cancel).thenThrows(NotFoundError, 'review_not_found');
  });
});

describe('RecordReviewOutcome', () => {
  const assessments = [
    { agreementId: 'health-cooperation', rating: 'on_track' as const },
    { agreementId: 'air-connectivity', commitmentId: 'new-route', rating: 'at_risk' as const, note: 'aircraft leasing pending' },
  ];

  it('records when it was held, the summary and the assessments', () => {
    given([scheduled()])
      .when(outcome({ summary: 'Two agreements reviewed', assessments }))
      .then([{ type: 'ReviewHeld', data: { heldAt: MEETING, summary: 'Two agreements reviewed', assessments } }]);
  });

  it('marks the review held', () => {
    const r = existing(given([scheduled()]).when(outcome({ summary: 'Two agreements reviewed', assessments })).thenState());
    expect(r).toMatchObject({ status: 'held', heldAt: MEETING, summary: 'Two agreements reviewed', assessments });
  });

  it('accepts a meeting held right now', () => {
    given([scheduled()])
      .when(outcome({ heldAt: '2026-03-20T15:00:00.000Z', now: '2026-03-20T15:00:00.000Z', assessments: [] }))
      .then([{ type: 'ReviewHeld', data: { heldAt: '2026-03-20T15:00:00.000Z', assessments: [] } }]);
  });

  it('refuses a meeting held in the future, naming heldAt', () => {
    given([scheduled()])
      .when(outcome({ heldAt: '2026-03-20T15:00:00.001Z', now: '2026-03-20T15:00:00.000Z' }))
      .thenThrows(ValidationError, 'invalid_input', ['heldAt']);
  });

  it('refuses an assessment of an agreement outside the review, naming it', () => {
    given([scheduled()])
      .when(outcome({ assessments: [assessments[0]!, { agreementId: 'science-programme', rating: 'done' }] }))
      .thenThrows(ValidationError, 'invalid_input', ['assessments.1.agreementId']);
  });

  it('refuses to record the outcome twice', () => {
    given([scheduled(), held()]).when(outcome()).thenThrows(ConflictError, 'review_held');
  });

  it('refuses a cancelled review', () => {
    given([scheduled(), cancelled()]).when(outcome()).thenThrows(ConflictError, 'review_cancelled');
  });

  it('refuses an unknown review', () => {
    given([]).when(outcome()).thenThrows(NotFoundError, 'review_not_found');
  });
});

describe('RecordReminderSent', () => {
  it('records the reminder and keeps it on the review', () => {
    given([scheduled()])
      .when(recordReminder(MEETING, '7d', 'ana@mppre.gob.ve'))
      .then([{ type: 'ReminderSent', data: { scheduledFor: MEETING, offset: '7d', email: 'ana@mppre.gob.ve', sentAt: NOW } }]);
    const r = existing(given([scheduled()]).when(recordReminder(MEETING, '7d', 'ana@mppre.gob.ve')).thenState());
    expect(r.reminders).toEqual([{ scheduledFor: MEETING, offset: '7d', email: 'ana@mppre.gob.ve', sentAt: NOW }]);
  });

  it('appends nothing when the same reminder was already recorded', () => {
    given([scheduled(), reminderSent(MEETING, '7d', 'ana@mppre.gob.ve')]).when(recordReminder(MEETING, '7d', 'ana@mppre.gob.ve')).thenNothing();
  });

  it.each([
    ['another offset', '1d', 'ana@mppre.gob.ve'],
    ['another attendee', '7d', 'ivan@mid.ru'],
  ])('records a reminder for %s', (_label, offset, email) => {
    given([scheduled(), reminderSent(MEETING, '7d', 'ana@mppre.gob.ve')])
      .when(recordReminder(MEETING, offset, email))
      .then([{ type: 'ReminderSent', data: { scheduledFor: MEETING, offset, email, sentAt: NOW } }]);
  });

  it('treats the same offset and attendee as a new reminder after a reschedule', () => {
    given([scheduled(), reminderSent(MEETING, '7d', 'ana@mppre.gob.ve'), rescheduled(MEETING, LATER)])
      .when(recordReminder(LATER, '7d', 'ana@mppre.gob.ve'))
      .then([{ type: 'ReminderSent', data: { scheduledFor: LATER, offset: '7d', email: 'ana@mppre.gob.ve', sentAt: NOW } }]);
  });

  it('refuses an unknown review', () => {
    given([]).when(recordReminder(MEETING, '7d', 'ana@mppre.gob.ve')).thenThrows(NotFoundError, 'review_not_found');
  });
});
