import { describe, expect, it } from 'vitest';
import type { ExistingReview } from '@cm/domain';
import { planReminders, reminderId } from './reminder-planning.js';

const offsets = [
  { label: '7d', ms: 7 * 86_400_000 },
  { label: '1d', ms: 86_400_000 },
];
const review = (over: Partial<ExistingReview> = {}): ExistingReview => ({
  exists: true,
  id: 'health-review',
  title: 'Health review',
  scheduledFor: '2027-02-10T14:00:00.000Z',
  status: 'scheduled',
  agreementIds: ['cancer-vaccines'],
  attendees: [{ email: 'ana@example.org', locale: 'es' }, { email: 'ivan@example.org', name: 'Ivan', locale: 'ru' }, { email: 'kim@example.org' }],
  location: null,
  heldAt: null,
  summary: null,
  assessments: [],
  cancellationReason: null,
  pendingCancellation: null,
  pendingOutcome: null,
  sequence: 0,
  reminders: [],
  reminderFailures: [],
  ...over,
});

describe('planning reminders', () => {
  it('plans one send per offset and attendee at scheduledFor minus the offset, in the attendee locale', () => {
    const plan = planReminders(review(), offsets, '2027-01-01T00:00:00.000Z');
    expect(plan).toHaveLength(6);
    const ana = plan.filter((p) => p.email === 'ana@example.org');
    expect(ana.map((p) => [p.offset, p.sendAt, p.locale])).toEqual([
      ['7d', '2027-02-03T14:00:00.000Z', 'es'],
      ['1d', '2027-02-09T14:00:00.000Z', 'es'],
    ]);
    expect(plan.find((p) => p.email === 'kim@example.org')!.locale).toBe('en');
    expect(new Set(plan.map((p) => p.id)).size).toBe(6);
  });

  it('collapses offsets already due into one send at once, recorded under the most urgent', () => {
    const now = '2027-02-09T20:00:00.000Z'; // both 7d and 1d already passed
    const plan = planReminders(review(), offsets, now);
    expect(plan).toHaveLength(3);
    for (const p of plan) expect(p).toMatchObject({ offset: '1d', covers: ['7d', '1d'], sendAt: now });
  });

  it('sends the due offset at once and keeps the later one for its time', () => {
    const now = '2027-02-05T00:00:00.000Z'; // 7d passed, 1d not yet
    const ana = planReminders(review(), offsets, now).filter((p) => p.email === 'ana@example.org');
    expect(ana.map((p) => [p.offset, p.covers, p.sendAt])).toEqual([
      ['7d', ['7d'], now],
      ['1d', ['1d'], '2027-02-09T14:00:00.000Z'],
    ]);
  });

  it('leaves out what was sent, alone or inside a collapsed send, and ignores e-mail case', () => {
    const r = review({
      reminders: [
        { scheduledFor: '2027-02-10T14:00:00.000Z', offset: '7d', email: 'ANA@example.org', sentAt: '2027-02-03T14:00:00.000Z' },
        { scheduledFor: '2027-02-10T14:00:00.000Z', offset: '1d', covers: ['7d', '1d'], email: 'ivan@example.org', sentAt: '2027-02-09T15:00:00.000Z' },
      ],
    });
    const plan = planReminders(r, offsets, '2027-02-01T00:00:00.000Z');
    expect(plan.map((p) => `${p.email} ${p.offset}`).sort()).toEqual(['ana@example.org 1d', 'kim@example.org 1d', 'kim@example.org 7d']);
  });

  it('re-plans from the new date after a reschedule: a reminder sent for the old date does not count', () => {
    const r = review({
      scheduledFor: '2027-03-10T14:00:00.000Z',
      reminders: [{ scheduledFor: '2027-02-10T14:00:00.000Z', offset: '7d', email: 'ana@example.org', sentAt: '2027-02-03T14:00:00.000Z' }],
    });
    const ana = planReminders(r, offsets, '2027-02-04T00:00:00.000Z').filter((p) => p.email === 'ana@example.org');
    expect(ana.map((p) => p.sendAt)).toEqual(['2027-03-03T14:00:00.000Z', '2027-03-09T14:00:00.000Z']);
    expect(ana[0]!.id).toBe(reminderId('health-review', '2027-03-10T14:00:00.000Z', '7d', 'ana@example.org'));
  });

  it('plans nothing for a cancelled or held review, or one already past', () => {
    expect(planReminders(review({ status: 'cancelled' }), offsets, '2027-01-01T00:00:00.000Z')).toEqual([]);
    expect(planReminders(review({ status: 'held' }), offsets, '2027-01-01T00:00:00.000Z')).toEqual([]);
    expect(planReminders(review(), offsets, '2027-02-10T14:00:00.000Z')).toEqual([]);
  });
});

describe('a send that failed for good', () => {
  const now = '2027-02-09T20:00:00.000Z'; // 7d and 1d both due: one collapsed send per attendee
  const failure = (failedAt: string, email = 'ana@example.org') => ({
    scheduledFor: '2027-02-10T14:00:00.000Z', offset: '1d', email, failedAt, attempts: 5, error: '451 try later',
  });
  const anaOf = (r: ExistingReview, at = now) => planReminders(r, offsets, at).filter((p) => p.email === 'ana@example.org');

  it('goes again after 15 minutes, then after twice as long each round', () => {
    expect(anaOf(review({ reminderFailures: [failure('2027-02-09T19:55:00.000Z')] })).map((p) => p.sendAt)).toEqual(['2027-02-09T20:10:00.000Z']);
    const twice = review({ reminderFailures: [failure('2027-02-09T19:00:00.000Z'), failure('2027-02-09T19:50:00.000Z')] });
    expect(anaOf(twice).map((p) => p.sendAt)).toEqual(['2027-02-09T20:20:00.000Z']);
    // Past its retry time: at once. Another attendee's failure does not hold Ana back.
    expect(anaOf(review({ reminderFailures: [failure('2027-02-09T19:00:00.000Z')] })).map((p) => p.sendAt)).toEqual([now]);
    expect(anaOf(review({ reminderFailures: [failure('2027-02-09T19:59:00.000Z', 'kim@example.org')] })).map((p) => p.sendAt)).toEqual([now]);
  });

  it('is given up after six rounds, the failures staying on the review', () => {
    const six = Array.from({ length: 6 }, (_, i) => failure(`2027-02-0${i + 1}T10:00:00.000Z`));
    expect(anaOf(review({ reminderFailures: six }))).toEqual([]);
    expect(planReminders(review({ reminderFailures: six }), offsets, now)).toHaveLength(2);
  });
});
