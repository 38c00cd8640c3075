// A review in the future shows the reminders still to come, not only those sent: an official
// sees when, to whom and for which offset an e-mail will go out. The clock is the test's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, createAgreement, get, type Json } from './testing/api-fixtures.js';
import { createTestApp, type TestApp } from './testing/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ now: '2027-01-05T09:00:00.000Z' });
  await createAgreement(t, { id: 'health-2025' });
});
afterAll(async () => t.close());

const review = (id: string) => ({
  id,
  title: 'Health cooperation review',
  scheduledFor: '2027-02-10T14:00:00Z',
  agreementIds: ['health-2025'],
  attendees: [{ email: 'focal.point@example.org', locale: 'es' }, { email: 'desk.officer@example.ru', locale: 'ru' }],
});
const planned = async (id: string) => (await get(t, `/v1/reviews/${id}`)).json<Json>().plannedReminders;

describe('a scheduled review', () => {
  it('lists each e-mail still to go out: when, to whom, for which offset', async () => {
    await command(t, '/v1/reviews', review('review-planned'), 201);
    expect(await planned('review-planned')).toEqual([
      { sendAt: '2027-02-03T14:00:00.000Z', email: 'desk.officer@example.ru', offset: '7d', covers: ['7d'] },
      { sendAt: '2027-02-03T14:00:00.000Z', email: 'focal.point@example.org', offset: '7d', covers: ['7d'] },
      { sendAt: '2027-02-09T14:00:00.000Z', email: 'desk.officer@example.ru', offset: '1d', covers: ['1d'] },
      { sendAt: '2027-02-09T14:00:00.000Z', email: 'focal.point@example.org', offset: '1d', covers: ['1d'] },
    ]);
  });

  it('lists none once the review is cancelled, or once its date has passed', async () => {
    await command(t, '/v1/reviews', review('review-cancelled'), 201);
    await command(t, '/v1/reviews/review-cancelled/cancellation', { reason: 'minister unavailable' });
    expect(await planned('review-cancelled')).toEqual([]);
    t.setNow('2027-02-11T00:00:00.000Z');
    expect(await planned('review-planned')).toEqual([]);
    t.setNow('2027-01-05T09:00:00.000Z');
  });
});
