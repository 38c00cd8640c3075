// Joint acts of two governments: one party may denounce an agreement, which ends it only after
// the notice period; a joint review's cancellation or outcome by one side is a proposal that
// takes effect when the other side confirms it. One key per party, and an admin.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agreementInput, commitmentInput, expectProblem, get, post, type Json } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const admin: TestKey = { name: 'ops-admin', role: 'admin', secret: 'cm_admin_joint_0001' };
const ven: TestKey = { name: 'mfa-ven', role: 'editor', parties: ['VEN'], secret: 'cm_ven_joint_0001' };
const rus: TestKey = { name: 'mid-rus', role: 'editor', parties: ['RUS'], secret: 'cm_rus_joint_0001' };

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ keys: [admin, ven, rus], now: '2026-01-10T09:00:00Z' });
});
afterAll(async () => t.close());

async function agreement(id: string, extra: Json = {}) {
  const r = await post(t, '/v1/agreements', agreementInput({
    id, commitments: [
      commitmentInput({ id: `${id}-ven`, responsible: { party: 'VEN', institution: 'PDVSA' } }),
      commitmentInput({ id: `${id}-rus`, responsible: { party: 'RUS', institution: 'Rosneft' } }),
    ], ...extra,
  }), bearer(admin));
  expect(r.statusCode, r.body).toBe(201);
}
const read = async (url: string, position?: string) => (await get(t, position ? `${url}?after=${position}` : url, bearer(admin))).json<Json>();

describe('denunciation of a joint agreement', () => {
  it("one party's termination is a denunciation: visible at once, in force until the notice period (default 6 months) runs out", async () => {
    t.setNow('2026-01-10T09:00:00Z');
    await agreement('oil-2026');
    const res = await post(t, '/v1/agreements/oil-2026/termination', { reason: 'sanctions regime' }, bearer(ven));
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Json>();
    expect(body.denunciation).toEqual({ byParty: 'VEN', reason: 'sanctions regime', noticeAt: '2026-01-10T09:00:00.000Z', effectiveAt: '2026-07-10T09:00:00.000Z' });
    expect(body.status).not.toBe('terminated');
    expect(body.terminated).toBeNull();
    expect(body.statusReason).toContain('denounced by VEN');

    // Still in force: the RUS side reports on its commitment.
    t.setNow('2026-07-10T08:59:59Z');
    const report = await post(t, '/v1/agreements/oil-2026/commitments/oil-2026-rus/progress', { percent: 30 }, bearer(rus));
    expect(report.statusCode, report.body).toBe(200);

    // From effectiveAt it is terminated, by the clock alone.
    t.setNow('2026-07-10T09:00:00Z');
    const after = await read('/v1/agreements/oil-2026', report.json<Json>().position);
    expect(after.status).toBe('terminated');
    expect(after.terminated.at).toBe('2026-07-10T09:00:00.000Z');
    expect(after.statusReason).toContain('denounced by VEN');
    const frozen = expectProblem(await post(t, '/v1/agreements/oil-2026/commitments/oil-2026-rus/progress', { percent: 40 }, bearer(rus)), 409);
    expect(frozen.code).toBe('agreement_terminated');
  });

  it("takes the agreement's own notice period, refuses the same party denouncing twice, and the other party's termination ends it at once", async () => {
    t.setNow('2026-01-10T09:00:00Z');
    await agreement('gas-2026', { noticePeriodMonths: 12 });
    const d = (await post(t, '/v1/agreements/gas-2026/termination', { reason: 'notice' }, bearer(ven))).json<Json>();
    expect(d.denunciation.effectiveAt).toBe('2027-01-10T09:00:00.000Z');
    expect(expectProblem(await post(t, '/v1/agreements/gas-2026/termination', { reason: 'again' }, bearer(ven)), 409).code).toBe('denunciation_pending');
    const mutual = await post(t, '/v1/agreements/gas-2026/termination', { reason: 'agreed by both' }, bearer(rus));
    expect(mutual.statusCode, mutual.body).toBe(200);
    expect(mutual.json<Json>().status).toBe('terminated');
  });

  it('an admin terminates at once; a denunciation can be withdrawn by its party before it takes effect, not by the other', async () => {
    t.setNow('2026-01-10T09:00:00Z');
    await agreement('coal-2026');
    const now = await post(t, '/v1/agreements/coal-2026/termination', { reason: 'commission decision' }, bearer(admin));
    expect(now.json<Json>().status).toBe('terminated');

    await agreement('iron-2026');
    await post(t, '/v1/agreements/iron-2026/termination', { reason: 'notice' }, bearer(ven));
    expect(expectProblem(await post(t, '/v1/agreements/iron-2026/denunciation/withdrawal', {}, bearer(rus)), 403).code).toBe('not_denouncing_party');
    const w = await post(t, '/v1/agreements/iron-2026/denunciation/withdrawal', { reason: 'talks resumed' }, bearer(ven));
    expect(w.statusCode, w.body).toBe(200);
    expect(w.json<Json>().denunciation).toBeNull();
    t.setNow('2026-08-01T00:00:00Z');
    expect((await read('/v1/agreements/iron-2026', w.json<Json>().position)).status).not.toBe('terminated');
    expect(expectProblem(await post(t, '/v1/agreements/iron-2026/denunciation/withdrawal', {}, bearer(ven)), 409).code).toBe('no_denunciation');
    const types = (await read('/v1/agreements/iron-2026/history')).events.map((e: Json) => e.type);
    expect(types).toEqual(expect.arrayContaining(['AgreementDenounced', 'DenunciationWithdrawn']));
  });
});

describe('a joint review', () => {
  async function review(id: string) {
    t.setNow('2026-02-01T09:00:00Z');
    await agreement(`${id}-a`);
    const r = await post(t, '/v1/reviews', {
      id, title: 'Oil review', scheduledFor: '2026-03-01T09:00:00Z', agreementIds: [`${id}-a`],
      attendees: [{ email: 'ana@example.org' }],
    }, bearer(admin));
    expect(r.statusCode, r.body).toBe(201);
  }

  it("one side's cancellation is a proposal: the review stays scheduled (reminders still planned) until the other side confirms", async () => {
    await review('rev-cancel');
    const p = await post(t, '/v1/reviews/rev-cancel/cancellation', { reason: 'no quorum' }, bearer(ven));
    expect(p.statusCode, p.body).toBe(200);
    expect(p.json<Json>().status).toBe('scheduled');
    expect(p.json<Json>().pendingProposals).toEqual([expect.objectContaining({ kind: 'cancellation', byParties: ['VEN'], reason: 'no quorum' })]);
    const live = await read('/v1/reviews/rev-cancel', p.json<Json>().position);
    expect(live.status).toBe('scheduled');
    expect(live.plannedReminders.length).toBeGreaterThan(0);
    expect(expectProblem(await post(t, '/v1/reviews/rev-cancel/cancellation/confirm', {}, bearer(ven)), 409).code).toBe('own_proposal');
    const c = await post(t, '/v1/reviews/rev-cancel/cancellation/confirm', {}, bearer(rus));
    expect(c.statusCode, c.body).toBe(200);
    expect(c.json<Json>().status).toBe('cancelled');
    expect(c.json<Json>().pendingProposals).toEqual([]);
    expect((await read('/v1/reviews/rev-cancel', c.json<Json>().position)).plannedReminders).toEqual([]);
  });

  it("the other side sending the same cancellation confirms it; an admin cancels at once", async () => {
    await review('rev-same');
    await post(t, '/v1/reviews/rev-same/cancellation', { reason: 'no quorum' }, bearer(rus));
    const c = await post(t, '/v1/reviews/rev-same/cancellation', { reason: 'no quorum' }, bearer(ven));
    expect(c.json<Json>().status).toBe('cancelled');
    await review('rev-admin');
    expect((await post(t, '/v1/reviews/rev-admin/cancellation', { reason: 'x' }, bearer(admin))).json<Json>().status).toBe('cancelled');
  });

  it("one side's outcome is a proposal; the other side's confirmation holds the review and records it on the agreement", async () => {
    await review('rev-out');
    t.setNow('2026-03-01T12:00:00Z');
    const outcome = { heldAt: '2026-03-01T11:00:00Z', summary: 'good progress', assessments: [{ agreementId: 'rev-out-a', commitmentId: 'rev-out-a-ven', rating: 'on_track' }] };
    const p = await post(t, '/v1/reviews/rev-out/outcome', outcome, bearer(ven));
    expect(p.statusCode, p.body).toBe(200);
    expect(p.json<Json>().status).toBe('scheduled');
    expect(p.json<Json>().pendingProposals).toEqual([expect.objectContaining({ kind: 'outcome', byParties: ['VEN'], heldAt: '2026-03-01T11:00:00.000Z' })]);
    expect((await read('/v1/agreements/rev-out-a', p.json<Json>().position)).lastReviewedAt).toBeNull();
    expect(expectProblem(await post(t, '/v1/reviews/rev-out/outcome/confirm', {}, bearer(ven)), 409).code).toBe('own_proposal');
    expect(expectProblem(await post(t, '/v1/reviews/rev-out/cancellation/confirm', {}, bearer(rus)), 409).code).toBe('no_pending_proposal');
    const c = await post(t, '/v1/reviews/rev-out/outcome/confirm', {}, bearer(rus));
    expect(c.statusCode, c.body).toBe(200);
    expect(c.json<Json>()).toMatchObject({ status: 'held', heldAt: '2026-03-01T11:00:00.000Z', summary: 'good progress' });
    expect((await read('/v1/agreements/rev-out-a', c.json<Json>().position)).lastReviewedAt).toBe('2026-03-01T11:00:00.000Z');
    const history = (await read('/v1/reviews/rev-out/history')).events;
    expect(history.find((e: Json) => e.type === 'ReviewHeld').actor).toBe('mid-rus');
    expect(history.find((e: Json) => e.type === 'ReviewHeld').occurredAt).toBe('2026-03-01T11:00:00.000Z');
    expect(history.find((e: Json) => e.type === 'ReviewOutcomeProposed').actor).toBe('mfa-ven');
  });

  it("the other side sending the same outcome, the first side's ratings included, holds the review; a different one is a counter-proposal", async () => {
    await review('rev-merge');
    t.setNow('2026-03-01T12:00:00Z');
    const venRating = { agreementId: 'rev-merge-a', commitmentId: 'rev-merge-a-ven', rating: 'on_track' };
    const rusRating = { agreementId: 'rev-merge-a', commitmentId: 'rev-merge-a-rus', rating: 'at_risk' };
    const heldAt = '2026-03-01T11:00:00Z';
    await post(t, '/v1/reviews/rev-merge/outcome', { heldAt, assessments: [venRating] }, bearer(ven));
    // RUS keeps VEN's rating as proposed and adds its own: a counter-proposal, which VEN may not alter on RUS's behalf.
    const counter = await post(t, '/v1/reviews/rev-merge/outcome', { heldAt, assessments: [venRating, rusRating] }, bearer(rus));
    expect(counter.statusCode, counter.body).toBe(200);
    expect(counter.json<Json>().status).toBe('scheduled');
    expect(counter.json<Json>().pendingProposals).toEqual([expect.objectContaining({ kind: 'outcome', byParties: ['RUS'] })]);
    expect(expectProblem(await post(t, '/v1/reviews/rev-merge/outcome', { heldAt, assessments: [venRating, { ...rusRating, rating: 'on_track' }] }, bearer(ven)), 403).code).toBe('outside_parties');
    const agreed = await post(t, '/v1/reviews/rev-merge/outcome', { heldAt, assessments: [venRating, rusRating] }, bearer(ven));
    expect(agreed.statusCode, agreed.body).toBe(200);
    expect(agreed.json<Json>().status).toBe('held');
    expect((await read('/v1/agreements/rev-merge-a', agreed.json<Json>().position)).lastAssessments).toEqual([venRating, rusRating]);
  });
});
