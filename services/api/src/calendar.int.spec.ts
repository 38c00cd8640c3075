// The .ics feed read back by a strict RFC 5545 parser (ical.js): whatever a caller puts in an
// attendee's name, a title or a location stays inside its own parameter or value, so no
// calendar client sees an injected parameter, another address or another property.
import ICAL from 'ical.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { createAgreement, get, post, settle, type Json } from './testing/api-fixtures.js';

const NOW = '2026-03-01T09:00:00.000Z';
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: NOW });
  await createAgreement(t, { id: 'ag-cal' });
});
afterEach(async () => {
  await t.close();
});

async function schedule(body: Json): Promise<void> {
  const res = await post(t, '/v1/reviews', { id: 'rev-cal', title: 'Health review', scheduledFor: '2026-06-10T14:00:00Z', agreementIds: ['ag-cal'], ...body });
  expect(res.statusCode, res.body).toBe(201);
  await settle(t, res.json<Json>().position);
}

async function feed(query = ''): Promise<ICAL.Component> {
  const res = await get(t, `/v1/reviews.ics${query}`);
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/calendar/);
  return new ICAL.Component(ICAL.parse(res.body));
}

const events = (cal: ICAL.Component) => cal.getAllSubcomponents('vevent');

describe('GET /v1/reviews.ics', () => {
  it('keeps an attendee name that tries to inject a parameter and an address inside its CN', async () => {
    const name = 'a";ROLE=CHAIR;X="b:MAILTO:evil@x.org';
    await schedule({ attendees: [{ email: 'focal.point@example.org', name }, { email: 'second@example.org', name: 'Ana, "the chair"; VEN' }] });

    const [event] = events(await feed());
    const attendees = event!.getAllProperties('attendee');
    expect(attendees).toHaveLength(2);
    const [first, second] = attendees;
    expect(String(first!.getFirstValue()).toLowerCase()).toBe('mailto:focal.point@example.org');
    // The role is the one the service writes for everyone, not the injected CHAIR.
    expect(first!.getParameter('role')).toBe('REQ-PARTICIPANT');
    expect(first!.getParameter('x')).toBeUndefined();
    // RFC 6868 carries the double quote inside the quoted value; a parser without it sees ^' in its place.
    expect(first!.getParameter('cn')).toBe(name);
    expect(String(second!.getFirstValue()).toLowerCase()).toBe('mailto:second@example.org');
    expect(second!.getParameter('cn')).toBe('Ana, "the chair"; VEN');
    expect(event!.getAllProperties('attendee').map((a) => String(a.getFirstValue())).filter((v) => v.includes('evil'))).toEqual([]);
  });

  it('escapes title and location so that they cannot start another property', async () => {
    const title = 'Review; part 1, with \\ and "quotes"';
    const location = 'Caracas, Sala 3; piso 2';
    await schedule({ title, location, attendees: [{ email: 'focal.point@example.org' }] });

    const [event] = events(await feed('?attendee=focal.point@example.org'));
    expect(event!.getFirstPropertyValue('summary')).toBe(title);
    expect(event!.getFirstPropertyValue('location')).toBe(location);
    expect(event!.getAllProperties().map((p) => p.name).filter((n) => n === 'attendee' || n === 'summary')).toEqual(['summary', 'attendee']);
  });
});
