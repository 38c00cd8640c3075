// An agreement's life as a treaty through HTTP, with the VEN and RUS editors and an admin:
// ratifications, entry into force (derived from the last ratification or recorded, and
// corrected), provisional application, suspension, expiry and denunciation; due dates relative
// to entry into force. The clock is the test's.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agreementInput, commitmentInput, errorPaths, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const admin: TestKey = { name: 'ops-admin', role: 'admin', secret: 'cm_admin_secret_0001' };
const venEditor: TestKey = { name: 'mfa-ven', role: 'editor', parties: ['VEN'], secret: 'cm_ven_editor_0001' };
const rusEditor: TestKey = { name: 'mid-rus', role: 'editor', parties: ['RUS'], secret: 'cm_rus_editor_0001' };

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ keys: [admin, venEditor, rusEditor], now: '2026-03-02T12:00:00Z' });
});
afterEach(async () => t.close());

/** Sends as `key`, expects `expected`, and waits until the read models show it. */
async function send(key: TestKey, url: string, body: unknown, expected = 200): Promise<Json> {
  const res = await post(t, url, body, bearer(key));
  expect(res.statusCode, res.body).toBe(expected);
  const answer = res.json<Json>();
  expect((await get(t, `/v1/dashboard?after=${answer.position}`, bearer(admin))).statusCode).toBe(200);
  return answer;
}
const read = async (url: string, key: TestKey = admin) => {
  const res = await get(t, url, bearer(key));
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Json>();
};

const energy = (overrides: Json = {}) => agreementInput({
  id: 'energy-2026',
  sector: 'energy',
  signedAt: '2026-01-15',
  commitments: [
    commitmentInput({ id: 'grid-study', dueDate: { relativeTo: 'entry_into_force', days: 90 }, responsible: { party: 'VEN', institution: 'Ministry of Electric Energy' } }),
    commitmentInput({ id: 'turbines', dueDate: { relativeTo: 'entry_into_force', months: 6 }, responsible: { party: 'VEN', institution: 'Corpoelec' } }),
    commitmentInput({ id: 'fixed', dueDate: '2026-12-31', responsible: { party: 'VEN', institution: 'Corpoelec' } }),
  ],
  ...overrides,
});

describe('ratification and entry into force', () => {
  it('enters into force on the last ratification by default, dated the later notification, and fixes the relative due dates then', async () => {
    const signed = await send(venEditor, '/v1/agreements', energy(), 201);
    expect(signed).toMatchObject({ lifecycle: 'signed', entryIntoForceMode: 'on_last_ratification', entryIntoForce: null, ratifications: [], awaitingRatification: ['VEN', 'RUS'] });
    const grid = signed.commitments.find((c: Json) => c.id === 'grid-study');
    expect(grid).toMatchObject({ dueDate: null, dueRule: { relativeTo: 'entry_into_force', days: 90 }, overdue: false });
    expect((await read('/v1/dashboard')).awaitingRatification).toEqual({
      RUS: { count: 1, agreementIds: ['energy-2026'] }, VEN: { count: 1, agreementIds: ['energy-2026'] },
    });

    const ven = await send(venEditor, '/v1/agreements/energy-2026/ratifications', { party: 'VEN', date: '2026-02-10' });
    expect(ven).toMatchObject({ lifecycle: 'signed', ratifications: [{ party: 'VEN', date: '2026-02-10' }], awaitingRatification: ['RUS'] });
    expect((await read('/v1/dashboard')).awaitingRatification).toEqual({ RUS: { count: 1, agreementIds: ['energy-2026'] } });

    const rus = await send(rusEditor, '/v1/agreements/energy-2026/ratifications', { party: 'RUS', date: '2026-03-01' });
    expect(rus).toMatchObject({ lifecycle: 'in_force', entryIntoForce: { date: '2026-03-01', derived: true }, awaitingRatification: [] });
    const due = Object.fromEntries(rus.commitments.map((c: Json) => [c.id, c.dueDate]));
    // 90 days from 1 March; six calendar months from 1 March; the fixed date untouched.
    expect(due).toEqual({ 'grid-study': '2026-05-30', turbines: '2026-09-01', fixed: '2026-12-31' });
    expect((await read('/v1/dashboard')).awaitingRatification).toEqual({});
    expect((await read('/v1/agreements?lifecycle=in_force')).items.map((a: Json) => a.id)).toEqual(['energy-2026']);
    expect((await read('/v1/agreements?lifecycle=signed')).items).toEqual([]);
  });

  it('lets an editor notify only its own party: VEN for RUS is 403 naming party, and nothing is appended', async () => {
    await send(venEditor, '/v1/agreements', energy(), 201);
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/energy-2026/ratifications', { party: 'RUS', date: '2026-02-10' }, bearer(venEditor)));
    const p = expectProblem(res, 403);
    expect(p.code).toBe('outside_parties');
    expect(errorPaths(p)).toEqual(['party']);
    // An admin notifies for any party; a second notification of the same party is a conflict.
    await send(admin, '/v1/agreements/energy-2026/ratifications', { party: 'RUS', date: '2026-02-11' });
    expect(expectProblem(await post(t, '/v1/agreements/energy-2026/ratifications', { party: 'RUS', date: '2026-02-12' }, bearer(rusEditor)), 409).code).toBe('already_ratified');
  });

  it('refuses a ratification by a non-party, before the signing or in the future with 400 naming the field', async () => {
    await send(venEditor, '/v1/agreements', energy(), 201);
    for (const [body, path] of [
      [{ party: 'CUB', date: '2026-02-10' }, 'party'],
      [{ party: 'VEN', date: '2026-01-14' }, 'date'],
      [{ party: 'VEN', date: '2026-03-04' }, 'date'],
    ] as const) {
      const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/energy-2026/ratifications', body, bearer(admin)));
      expect(errorPaths(expectProblem(res, 400))).toEqual([path]);
    }
  });

  it('with entryIntoForce explicit waits for the record; on_signature is in force from the signing day', async () => {
    await send(admin, '/v1/agreements', energy({ entryIntoForce: 'explicit' }), 201);
    await send(venEditor, '/v1/agreements/energy-2026/ratifications', { party: 'VEN', date: '2026-02-10' });
    const both = await send(rusEditor, '/v1/agreements/energy-2026/ratifications', { party: 'RUS', date: '2026-02-11' });
    expect(both).toMatchObject({ lifecycle: 'signed', entryIntoForce: null, awaitingRatification: [] });
    const recorded = await send(rusEditor, '/v1/agreements/energy-2026/entry-into-force', { date: '2026-02-20' });
    expect(recorded).toMatchObject({ lifecycle: 'in_force', entryIntoForce: { date: '2026-02-20', derived: false } });

    const mou = await send(admin, '/v1/agreements', energy({ id: 'energy-mou', kind: 'memorandum', entryIntoForce: 'on_signature' }), 201);
    expect(mou).toMatchObject({ lifecycle: 'in_force', entryIntoForce: { date: '2026-01-15', derived: true } });
    expect(mou.commitments.find((c: Json) => c.id === 'grid-study').dueDate).toBe('2026-04-15');
  });
});

describe('relative due dates', () => {
  it('refuses a rule relative to an unknown event with 400 naming the field, and appends nothing', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', energy({
      commitments: [commitmentInput({ id: 'grid-study', dueDate: { relativeTo: 'ratification', days: 90 } })],
    }), bearer(admin)));
    const p = expectProblem(res, 400);
    expect(errorPaths(p)).toEqual(['commitments.0.dueDate.relativeTo']);
    await send(admin, '/v1/agreements', energy(), 201);
    const both = await expectNothingAppended(t, () => post(t, '/v1/agreements/energy-2026/commitments', commitmentInput({ id: 'both', dueDate: { relativeTo: 'entry_into_force', days: 9, months: 1 } }), bearer(admin)));
    expect(errorPaths(expectProblem(both, 400))).toEqual(['dueDate.days']);
  });

  it('is never overdue while pending, is not before or after any day, and cannot be delayed', async () => {
    await send(admin, '/v1/agreements', energy(), 201);
    t.setNow('2030-01-01T12:00:00Z');
    const overdue = await read('/v1/commitments?overdue=true');
    expect(overdue.items.map((c: Json) => c.id)).toEqual(['fixed']);
    expect((await read('/v1/commitments?dueAfter=2026-01-01')).items.map((c: Json) => c.id)).toEqual(['fixed']);
    // Listed after every dated commitment.
    expect((await read('/v1/commitments?agreementId=energy-2026')).items.map((c: Json) => c.id)).toEqual(['fixed', 'grid-study', 'turbines']);
    const delay = expectProblem(await post(t, '/v1/agreements/energy-2026/commitments/grid-study/delay', { reason: 'Later', newDueDate: '2030-06-30' }, bearer(admin)), 409);
    expect(delay.code).toBe('due_date_pending');
  });

  it('moves with a correction of the entry into force, which needs a reason and stays in the history', async () => {
    await send(admin, '/v1/agreements', energy({ entryIntoForce: 'explicit' }), 201);
    await send(admin, '/v1/agreements/energy-2026/entry-into-force', { date: '2026-02-01' });
    expect((await read('/v1/agreements/energy-2026/commitments/grid-study')).dueDate).toBe('2026-05-02');

    const noReason = await expectNothingAppended(t, () => post(t, '/v1/agreements/energy-2026/entry-into-force', { date: '2026-02-15' }, bearer(venEditor)));
    expect(errorPaths(expectProblem(noReason, 400))).toEqual(['reason']);

    const corrected = await send(venEditor, '/v1/agreements/energy-2026/entry-into-force', { date: '2026-02-15', reason: 'The RUS note was received on 15 February' });
    expect(corrected.entryIntoForce).toEqual({ date: '2026-02-15', derived: false });
    const due = Object.fromEntries(corrected.commitments.map((c: Json) => [c.id, c.dueDate]));
    expect(due).toEqual({ 'grid-study': '2026-05-16', turbines: '2026-08-15', fixed: '2026-12-31' });

    const history = await read('/v1/agreements/energy-2026/history', admin);
    expect(history.events.at(-1)).toMatchObject({
      type: 'EntryIntoForceRecorded',
      actor: 'mfa-ven',
      data: {
        date: '2026-02-15', previousDate: '2026-02-01', reason: 'The RUS note was received on 15 February',
        movedDueDates: [{ commitmentId: 'grid-study', from: '2026-05-02', to: '2026-05-16' }, { commitmentId: 'turbines', from: '2026-08-01', to: '2026-08-15' }],
      },
    });
    const explained = await read('/v1/agreements/energy-2026/commitments/grid-study/explain', admin);
    // explain tells the commitment's own story: the rule's date fixed, then moved, by which event.
    expect(explained.steps.slice(-2).map((s: Json) => [s.type, s.changed.dueDate])).toEqual([
      ['EntryIntoForceRecorded', { from: null, to: '2026-05-02' }],
      ['EntryIntoForceRecorded', { from: '2026-05-02', to: '2026-05-16' }],
    ]);
  });
});

describe('provisional application, suspension, expiry and denunciation', () => {
  it('follows each step, filters by it, and closes the record on expiry', async () => {
    await send(admin, '/v1/agreements', energy(), 201);
    expect(expectProblem(await post(t, '/v1/agreements/energy-2026/suspension', { date: '2026-02-01', reason: 'Sanctions' }, bearer(admin)), 409).code).toBe('not_in_force');
    expect((await send(venEditor, '/v1/agreements/energy-2026/provisional-application', { date: '2026-01-20' })).lifecycle).toBe('provisionally_applied');
    expect((await read('/v1/agreements?lifecycle=provisionally_applied')).items.map((a: Json) => a.id)).toEqual(['energy-2026']);
    // Still awaiting ratification while applied provisionally.
    expect((await read('/v1/dashboard')).awaitingRatification.VEN).toEqual({ count: 1, agreementIds: ['energy-2026'] });

    const suspended = await send(rusEditor, '/v1/agreements/energy-2026/suspension', { date: '2026-02-01', reason: 'Force majeure' });
    expect(suspended).toMatchObject({ lifecycle: 'suspended', suspension: { date: '2026-02-01', reason: 'Force majeure' } });
    expect((await read('/v1/agreements?lifecycle=suspended')).total).toBe(1);
    const early = await expectNothingAppended(t, () => post(t, '/v1/agreements/energy-2026/resumption', { date: '2026-01-31' }, bearer(admin)));
    expect(errorPaths(expectProblem(early, 400))).toEqual(['date']);
    expect((await send(admin, '/v1/agreements/energy-2026/resumption', { date: '2026-02-20' })).lifecycle).toBe('provisionally_applied');
    expect(expectProblem(await post(t, '/v1/agreements/energy-2026/resumption', { date: '2026-02-21' }, bearer(admin)), 409).code).toBe('not_suspended');

    const expired = await send(admin, '/v1/agreements/energy-2026/expiry', { date: '2026-03-01', reason: 'The term ran out' });
    expect(expired).toMatchObject({ lifecycle: 'expired', expiry: { date: '2026-03-01', reason: 'The term ran out' }, awaitingRatification: [] });
    expect((await read('/v1/dashboard')).awaitingRatification).toEqual({});
    const closed = await expectNothingAppended(t, () => post(t, '/v1/agreements/energy-2026/commitments/fixed/progress', { percent: 10 }, bearer(venEditor)));
    expect(expectProblem(closed, 409).code).toBe('agreement_expired');
  });

  it('turns terminated when a denunciation of an agreement in force takes effect, by the clock alone', async () => {
    await send(admin, '/v1/agreements', energy({ entryIntoForce: 'on_signature', noticePeriodMonths: 3 }), 201);
    const denounced = await send(rusEditor, '/v1/agreements/energy-2026/termination', { reason: 'Notice given' });
    expect(denounced.lifecycle).toBe('in_force');
    t.setNow('2026-06-02T11:59:59Z');
    expect((await read('/v1/agreements/energy-2026')).lifecycle).toBe('in_force');
    t.setNow('2026-06-02T12:00:00Z');
    expect((await read('/v1/agreements/energy-2026')).lifecycle).toBe('terminated');
    expect((await read('/v1/agreements?lifecycle=terminated')).items.map((a: Json) => a.id)).toEqual(['energy-2026']);
    expect((await read('/v1/agreements?lifecycle=in_force')).items).toEqual([]);
  });
});

describe('milestones', () => {
  it("break a commitment into weighted steps its party's editor records; progress derives from the weights", async () => {
    await send(venEditor, '/v1/agreements', energy({ entryIntoForce: 'on_signature' }), 201);
    const base = '/v1/agreements/energy-2026/commitments/fixed';
    await send(venEditor, `${base}/milestones`, { id: 'site-chosen', title: 'Site chosen', dueDate: '2026-04-30', weight: 30 });
    await send(venEditor, `${base}/milestones`, { id: 'plant-built', title: 'Plant built', dueDate: '2026-11-30', weight: 70 });
    const over = await expectNothingAppended(t, () => post(t, `${base}/milestones`, { id: 'extra', title: 'Extra', dueDate: '2026-12-01', weight: 1 }, bearer(venEditor)));
    expect(errorPaths(expectProblem(over, 400))).toEqual(['weight']);
    const rus = await expectNothingAppended(t, () => post(t, `${base}/milestones/site-chosen/status`, { status: 'met' }, bearer(rusEditor)));
    expect(expectProblem(rus, 403).code).toBe('outside_parties');
    expect(expectProblem(await post(t, `${base}/milestones/nowhere/status`, { status: 'met' }, bearer(admin)), 404).code).toBe('milestone_not_found');

    await send(venEditor, `${base}/milestones/site-chosen/status`, { status: 'met', evidenceUrl: 'https://example.org/site' });
    const partly = await send(venEditor, `${base}/milestones/plant-built/status`, { status: 'partially_met', note: 'Walls up' });
    expect(partly.milestoneProgress).toBe(65);
    expect(partly.milestones).toMatchObject([
      { id: 'site-chosen', weight: 30, status: 'met', evidenceUrl: 'https://example.org/site' },
      { id: 'plant-built', weight: 70, status: 'partially_met', note: 'Walls up' },
    ]);
    // As of before the second status, the time-travel read shows the milestone as it was then.
    const history = await read('/v1/agreements/energy-2026/history', admin);
    const before = history.events.find((e: Json) => e.type === 'MilestoneStatusRecorded').revision;
    const then = await read(`/v1/agreements/energy-2026?revision=${before}`);
    expect(then.commitments.find((c: Json) => c.id === 'fixed')).toMatchObject({ milestoneProgress: 30 });
    expect((await read('/v1/commitments?agreementId=energy-2026')).items.find((c: Json) => c.id === 'fixed').milestoneProgress).toBe(65);
    const explained = await read(`${base}/explain`, admin);
    expect(explained.steps.filter((x: Json) => x.changed.milestoneProgress).map((x: Json) => [x.type, x.changed.milestoneProgress])).toEqual([
      ['MilestoneAdded', { from: null, to: 0 }],
      ['MilestoneStatusRecorded', { from: 0, to: 30 }],
      ['MilestoneStatusRecorded', { from: 30, to: 65 }],
    ]);
  });
});
