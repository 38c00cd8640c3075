// The two kinds of time through HTTP, for agreements and reviews: `asOf` (what the service
// said then), `revision` (a stream prefix) and `effectiveAt` (what was true in the world then,
// as known now); review history and integrity; one correlation id per command; and `explain`.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { genesisHash } from '@cm/event-store';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { command, commitmentInput, createAgreement, expectProblem, get, post, settle, sleep, type Json } from './testing/api-fixtures.js';

// Real clock: recordedAt is stamped by the store's own clock, and the views compare against it.
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(async () => {
  await t.close();
});

const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString();
const daysAhead = (n: number) => new Date(Date.now() + n * DAY).toISOString();
const dateOf = (iso: string) => iso.slice(0, 10);
const q = (s: string) => encodeURIComponent(s);
const minusMs = (iso: string, ms: number) => new Date(Date.parse(iso) - ms).toISOString();

const base = '/v1/agreements/ag-time';
const commitment = (a: Json, id: string) => (a.commitments as Json[]).find((c) => c.id === id)!;

async function historyOf(url: string): Promise<Json[]> {
  const res = await get(t, `${url}/history`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Json>().events as Json[];
}

async function ok(url: string): Promise<{ body: Json; etag: string | undefined }> {
  const res = await get(t, url);
  expect(res.statusCode, res.body).toBe(200);
  return { body: res.json<Json>(), etag: res.headers.etag as string | undefined };
}

/**
 * Signed 60 days ago with two commitments: `plant` (due in 2030) and `permit` (due 10 days ago).
 * Today `plant` gets a progress report backdated to 30 days ago.
 */
async function seedBackdated(): Promise<void> {
  await createAgreement(t, {
    id: 'ag-time',
    occurredAt: daysAgo(60),
    commitments: [commitmentInput({ id: 'plant', dueDate: '2030-06-30' }), commitmentInput({ id: 'permit', title: 'Issue the permit', dueDate: dateOf(daysAgo(10)) })],
  });
  await sleep(20);
  await command(t, `${base}/commitments/plant/progress`, { percent: 40, occurredAt: daysAgo(30) });
}

describe('effectiveAt against asOf, for agreements', () => {
  it('shows a progress report recorded today but backdated to last month at effectiveAt last month; asOf last month knew nothing', async () => {
    await seedBackdated();
    const lastMonth = daysAgo(20);

    const effective = await ok(`${base}?effectiveAt=${q(lastMonth)}`);
    expect(effective.body).toMatchObject({ view: 'effectiveAt', effectiveAt: lastMonth, evaluatedAt: lastMonth, revision: 3, status: 'in_implementation' });
    expect(commitment(effective.body, 'plant')).toMatchObject({ progress: 40, status: 'in_progress' });
    expect(effective.etag).toBe('"3"');

    // The service itself recorded the agreement only today: asking what it said last month is a 404.
    const recorded = expectProblem(await get(t, `${base}?asOf=${q(lastMonth)}`), 404);
    expect(recorded.code).toBe('agreement_not_found');
  });

  it('differs from asOf at the same instant when the backdated report was recorded after it', async () => {
    await seedBackdated();
    const events = await historyOf(base);
    const created = events[0]!.recordedAt as string;

    const asOf = await ok(`${base}?asOf=${q(created)}`);
    expect(asOf.body).toMatchObject({ view: 'asOf', asOf: created, revision: 2 });
    expect(commitment(asOf.body, 'plant')).toMatchObject({ progress: 0, status: 'pending' });
    expect(asOf.etag).toBe('"2"');

    const effective = await ok(`${base}?effectiveAt=${q(created)}`);
    expect(effective.body).toMatchObject({ view: 'effectiveAt', revision: 3 });
    expect(commitment(effective.body, 'plant')).toMatchObject({ progress: 40, status: 'in_progress' });
  });

  it('leaves out what occurred after the instant, and judges overdue and status against it', async () => {
    await seedBackdated();
    const before = await ok(`${base}?effectiveAt=${q(daysAgo(45))}`);
    // Signed, nothing reported yet; the permit was not due yet.
    expect(before.body).toMatchObject({ revision: 2, status: 'signed', progress: 0, commitmentCounts: { overdue: 0 } });
    expect(commitment(before.body, 'permit')).toMatchObject({ overdue: false });
    expect(before.etag).toBe('"2"');

    const now = await ok(`${base}?effectiveAt=${q(daysAgo(0))}`);
    expect(now.body).toMatchObject({ revision: 3, status: 'delayed', commitmentCounts: { overdue: 1 } });
    // Delayed though no commitment is "delayed": the answer names the rule and the commitment.
    expect(now.body.statusReason).toBe('delayed: 1 overdue: due date passed, not implemented (permit)');
    expect(before.body.statusReason).toMatch(/^signed: /);
    expect(commitment(now.body, 'permit')).toMatchObject({ overdue: true });
    const live = (await ok(base)).body;
    expect(now.body.commitments).toEqual(live.commitments);
  });

  it('answers 404 when the agreement was signed, by occurredAt, after the instant', async () => {
    await seedBackdated();
    const p = expectProblem(await get(t, `${base}?effectiveAt=${q(daysAgo(61))}`), 404);
    expect(p.code).toBe('agreement_not_found');
    expectProblem(await get(t, `/v1/agreements/never-signed?effectiveAt=${q(daysAgo(1))}`), 404);
  });

  it('treats an effectiveAt in the future as now', async () => {
    await seedBackdated();
    const { body } = await ok(`${base}?effectiveAt=2999-01-01T00:00:00Z`);
    expect(Date.parse(body.effectiveAt)).toBeLessThanOrEqual(Date.now());
    expect(body.revision).toBe(3);
  });
});

describe('GET /v1/agreements/{id}?revision=', () => {
  it('is the state right after revision n, as each command answered it', async () => {
    await createAgreement(t, { id: 'ag-time', commitments: [commitmentInput({ id: 'plant', dueDate: '2030-06-30' })] });
    const answers: Json[] = [];
    for (const [url, body] of [
      ['progress', { percent: 30 }],
      ['progress', { percent: 60 }],
      ['delay', { reason: 'Supplier late', newDueDate: '2031-01-31' }],
    ] as const) {
      await sleep(5);
      answers.push(await command(t, `${base}/commitments/plant/${url}`, body));
    }
    for (const answer of answers) {
      const { body, etag } = await ok(`${base}?revision=${answer.revision}`);
      expect(etag).toBe(`"${answer.revision}"`);
      expect(body).toMatchObject({ view: 'revision', revision: answer.revision, status: answer.agreementStatus });
      const { agreementStatus: _s, revision: _r, position: _p, ...asAnswered } = answer;
      expect(commitment(body, 'plant')).toEqual(asAnswered);
    }
  });

  it('tells apart two events recorded in one append, which asOf cannot', async () => {
    await createAgreement(t, { id: 'ag-time', commitments: [commitmentInput({ id: 'plant' })] });
    const zero = await ok(`${base}?revision=0`);
    expect(zero.body).toMatchObject({ revision: 0, commitments: [], commitmentCounts: { total: 0 } });
    expect(zero.etag).toBe('"0"');
    const one = await ok(`${base}?revision=1`);
    expect(one.body.commitments.map((c: Json) => c.id)).toEqual(['plant']);
    // revision n is evaluated at the recordedAt of event n: the same answer asOf that instant gives.
    const asOf = await ok(`${base}?asOf=${q(one.body.evaluatedAt)}`);
    const { view: _v, asOf: _a, ...sameDoc } = asOf.body;
    const { view: _w, ...revisionDoc } = one.body;
    expect(revisionDoc).toEqual(sameDoc);
  });

  it('at the head equals the live read', async () => {
    await seedBackdated();
    const { body, etag } = await ok(`${base}?revision=3`);
    const live = await get(t, base);
    expect(etag).toBe(live.headers.etag);
    const { view: _v, evaluatedAt: _e, ...doc } = body;
    const { commitments, status, progress, revision, updatedAt } = live.json<Json>();
    expect(doc).toMatchObject({ commitments, status, progress, revision, updatedAt });
  });

  it('answers 404 beyond the head, or for an unknown agreement', async () => {
    await seedBackdated();
    expect(expectProblem(await get(t, `${base}?revision=4`), 404).code).toBe('revision_not_found');
    expect(expectProblem(await get(t, '/v1/agreements/never-signed?revision=0'), 404).code).toBe('agreement_not_found');
  });

  it('refuses a revision that is not a whole number from 0 with 400', async () => {
    for (const bad of ['-1', 'abc', '1.5', '']) {
      const p = expectProblem(await get(t, `${base}?revision=${bad}`), 400);
      expect(p.errors.map((e: Json) => e.path)).toEqual(['revision']);
    }
  });
});

describe('two views at once', () => {
  it('is refused with 400 naming the parameters, for agreements and reviews', async () => {
    await seedBackdated();
    const at = q(daysAgo(1));
    for (const [url, named] of [
      [`${base}?asOf=${at}&revision=1`, ['asOf', 'revision']],
      [`${base}?revision=1&effectiveAt=${at}`, ['revision', 'effectiveAt']],
      [`${base}?asOf=${at}&effectiveAt=${at}`, ['asOf', 'effectiveAt']],
      [`/v1/reviews/rev-any?asOf=${at}&revision=0&effectiveAt=${at}`, ['asOf', 'revision', 'effectiveAt']],
    ] as const) {
      const p = expectProblem(await get(t, url), 400);
      expect(p.errors.map((e: Json) => e.path)).toEqual(named);
      for (const name of named) expect(p.detail).toContain(name);
    }
  });
});

describe('correlation ids', () => {
  it('gives every event of one command the same correlation id, and the next command another', async () => {
    await createAgreement(t, { id: 'ag-time', commitments: [commitmentInput({ id: 'plant' }), commitmentInput({ id: 'permit' })] });
    await command(t, `${base}/commitments/plant/progress`, { percent: 10 });
    const events = await historyOf(base);
    expect(events.map((e) => e.type)).toEqual(['AgreementSigned', 'CommitmentAdded', 'CommitmentAdded', 'ProgressReported']);
    const created = events[0]!.correlationId;
    expect(created).toEqual(expect.any(String));
    expect(events.slice(0, 3).map((e) => e.correlationId)).toEqual([created, created, created]);
    expect(events[3]!.correlationId).not.toBe(created);
  });

  it('takes the caller\'s X-Correlation-Id, and carries one id across the streams a review outcome writes', async () => {
    await createAgreement(t, { id: 'ag-time', commitments: [commitmentInput({ id: 'plant' })] });
    await createAgreement(t, { id: 'ag-other' });
    const scheduled = await post(t, '/v1/reviews', { id: 'rev-corr', title: 'Quarterly review', scheduledFor: daysAhead(30), agreementIds: ['ag-time', 'ag-other'], attendees: [{ email: 'desk@example.org' }] });
    expect(scheduled.statusCode, scheduled.body).toBe(201);
    const held = await post(t, '/v1/reviews/rev-corr/outcome', { assessments: [{ agreementId: 'ag-time', rating: 'on_track' }] }, { 'x-correlation-id': 'minutes-2026-04' });
    expect(held.statusCode, held.body).toBe(200);
    const reviewEvents = await historyOf('/v1/reviews/rev-corr');
    // Stored under the caller's key, so no other key can reuse it.
    const correlationId = `${reviewEvents.at(-1)!.actor}:minutes-2026-04`;
    expect(reviewEvents.at(-1)).toMatchObject({ type: 'ReviewHeld', correlationId });
    for (const id of ['ag-time', 'ag-other']) {
      expect((await historyOf(`/v1/agreements/${id}`)).at(-1)).toMatchObject({ type: 'AgreementReviewed', correlationId });
    }
  });
});

describe('reviews: history, integrity and time travel', () => {
  const review = '/v1/reviews/rev-q2';

  /**
   * `ag-time` (signed 60 days ago, `plant` due 2030) is reviewed: scheduled 5 days ago (by
   * occurredAt) for 30 days ahead, then moved to 40 days ahead; then `plant` is delayed, backdated to 3 days ago.
   */
  async function seedReview(): Promise<Json[]> {
    await createAgreement(t, { id: 'ag-time', occurredAt: daysAgo(60), commitments: [commitmentInput({ id: 'plant', dueDate: '2030-06-30' })] });
    const res = await post(t, '/v1/reviews', {
      id: 'rev-q2', title: 'Q2 review', scheduledFor: daysAhead(30), agreementIds: ['ag-time'], attendees: [{ email: 'desk@example.org' }], occurredAt: daysAgo(5),
    });
    expect(res.statusCode, res.body).toBe(201);
    await settle(t, res.json<Json>().position);
    await sleep(20);
    await command(t, `${review}/reschedule`, { scheduledFor: daysAhead(40), reason: 'Minister travelling' });
    await sleep(20);
    await command(t, `${base}/commitments/plant/delay`, { reason: 'Supplier late', newDueDate: '2031-01-31', occurredAt: daysAgo(3) });
    return historyOf(review);
  }

  it('lists the review stream with the same shape as an agreement history, paged', async () => {
    const events = await seedReview();
    expect(events.map((e) => [e.revision, e.type])).toEqual([[0, 'ReviewScheduled'], [1, 'ReviewRescheduled']]);
    for (const e of events) {
      expect(Object.keys(e).sort()).toEqual(['actor', 'correlationId', 'data', 'hash', 'hashScheme', 'leafIndex', 'occurredAt', 'position', 'prevHash', 'recordedAt', 'revision', 'type']);
      expect(e.actor).toBe('anonymous');
    }
    expect(events[0]).toMatchObject({ prevHash: genesisHash(2, 'review-rev-q2'), hashScheme: 2, data: { reviewId: 'rev-q2', title: 'Q2 review', agreementIds: ['ag-time'] } });
    expect(events[1]!.prevHash).toBe(events[0]!.hash);
    expect(events[1]!.data).toMatchObject({ reason: 'Minister travelling' });
    expect(Date.parse(events[0]!.occurredAt)).toBeLessThan(Date.parse(events[0]!.recordedAt) - 4 * DAY);

    const first = await ok(`${review}/history?limit=1`);
    expect(first.body).toMatchObject({ revision: 1, nextFromRevision: 1 });
    expect(first.body.events).toEqual(events.slice(0, 1));
    const rest = await ok(`${review}/history?fromRevision=1`);
    expect(rest.body).toMatchObject({ nextFromRevision: null, events: events.slice(1) });
  });

  it('verifies the review chain, and names the first revision edited in the SQLite file', async () => {
    const events = await seedReview();
    expect((await ok(`${review}/integrity`)).body).toEqual({ valid: true, events: 2, lastHash: events[1]!.hash, firstInvalidRevision: null, reason: null, schemes: { 2: 2 } });
    const changed = t.eventStore.db
      .prepare('UPDATE events SET data = ? WHERE stream = ? AND revision = ?')
      .run(JSON.stringify({ ...events[1]!.data, reason: 'Nobody asked' }), 'review-rev-q2', 1).changes;
    expect(changed).toBe(1);
    expect((await ok(`${review}/integrity`)).body).toMatchObject({ valid: false, firstInvalidRevision: 1 });
  });

  it('answers 404 for the history and integrity of an unknown review', async () => {
    expect(expectProblem(await get(t, '/v1/reviews/never-held/history'), 404).code).toBe('review_not_found');
    expect(expectProblem(await get(t, '/v1/reviews/never-held/integrity'), 404).code).toBe('review_not_found');
  });

  it('shows the review as it stood at a revision and as recorded at an instant, with the agenda cut the same way', async () => {
    const events = await seedReview();
    const live = (await ok(review)).body;
    expect(live).toMatchObject({ scheduledFor: events[1]!.data.scheduledFor, sequence: 1 });
    // Delayed since: on the agenda now.
    expect(live.agenda[0].commitments.map((c: Json) => [c.id, c.status])).toEqual([['plant', 'delayed']]);

    const zero = await ok(`${review}?revision=0`);
    expect(zero.etag).toBe('"0"');
    expect(zero.body).toMatchObject({ view: 'revision', revision: 0, scheduledFor: events[0]!.data.scheduledFor, sequence: 0, status: 'scheduled', evaluatedAt: events[0]!.recordedAt });
    // Before the delay was recorded the plant was on time, due in 2030: nothing on the agenda.
    expect(zero.body.agenda).toEqual([expect.objectContaining({ agreementId: 'ag-time', status: 'signed', commitments: [] })]);

    const asOf = await ok(`${review}?asOf=${q(events[1]!.recordedAt)}`);
    expect(asOf.etag).toBe('"1"');
    expect(asOf.body).toMatchObject({ view: 'asOf', asOf: events[1]!.recordedAt, revision: 1, scheduledFor: events[1]!.data.scheduledFor, sequence: 1 });
    expect(asOf.body.agenda[0].commitments).toEqual([]);

    const { view: _v, asOf: _a, evaluatedAt: _e, ...doc } = (await ok(`${review}?asOf=${q(daysAhead(400))}`)).body;
    // The live answer alone adds what is still to come (plannedReminders); the rest is the same.
    const { plannedReminders: _p, ...liveDoc } = live;
    expect(doc).toEqual({ ...liveDoc, agenda: [expect.objectContaining({ commitments: [expect.objectContaining({ id: 'plant', status: 'delayed' })] })] });
  });

  it('shows the review and its agenda as they were in the world at effectiveAt', async () => {
    await seedReview();
    // Scheduled 5 days ago, by occurredAt; the delay occurred 3 days ago.
    const four = await ok(`${review}?effectiveAt=${q(daysAgo(4))}`);
    expect(four.body).toMatchObject({ view: 'effectiveAt', revision: 0, sequence: 0 });
    expect(four.etag).toBe('"0"');
    expect(four.body.agenda[0].commitments).toEqual([]);
    const two = await ok(`${review}?effectiveAt=${q(daysAgo(2))}`);
    // The reschedule occurred today, so it is not in force two days ago; the delay is.
    expect(two.body).toMatchObject({ revision: 0, sequence: 0 });
    expect(two.body.agenda[0].commitments.map((c: Json) => [c.id, c.status, c.dueDate])).toEqual([['plant', 'delayed', '2031-01-31']]);
  });

  it('answers 404 before the review existed, by each kind of time, and beyond its head', async () => {
    const events = await seedReview();
    expect(expectProblem(await get(t, `${review}?asOf=${q(minusMs(events[0]!.recordedAt, 1))}`), 404).code).toBe('review_not_found');
    expect(expectProblem(await get(t, `${review}?effectiveAt=${q(daysAgo(6))}`), 404).code).toBe('review_not_found');
    expect(expectProblem(await get(t, `${review}?revision=2`), 404).code).toBe('revision_not_found');
    expect(expectProblem(await get(t, '/v1/reviews/never-held?revision=0'), 404).code).toBe('review_not_found');
  });

  it('cuts an agreement\'s reviews by the same rule', async () => {
    await seedReview();
    const before = await ok(`${base}?effectiveAt=${q(daysAgo(6))}`);
    expect(before.body.reviews).toEqual([]);
    const after = await ok(`${base}?effectiveAt=${q(daysAgo(4))}`);
    expect(after.body.reviews).toEqual([expect.objectContaining({ id: 'rev-q2', status: 'scheduled' })]);
    expect(after.body.nextReviewAt).toBe(after.body.reviews[0].scheduledFor);
  });
});

describe('GET /v1/agreements/{id}/commitments/{cid}/explain', () => {
  const explain = `${base}/commitments/plant/explain`;

  it('lists the events that set the status, progress and due date of a commitment added, progressed twice, delayed and implemented', async () => {
    await createAgreement(t, { id: 'ag-time', occurredAt: daysAgo(90), commitments: [commitmentInput({ id: 'permit' })] });
    await command(t, `${base}/commitments`, commitmentInput({ id: 'plant', dueDate: '2030-06-30', occurredAt: daysAgo(80) }), 201);
    await command(t, `${base}/commitments/plant/progress`, { percent: 30, note: 'Foundations', occurredAt: daysAgo(60) });
    await command(t, `${base}/commitments/permit/progress`, { percent: 50 });
    await command(t, `${base}/commitments/plant/progress`, { percent: 70, occurredAt: daysAgo(40) });
    await command(t, `${base}/commitments/plant/delay`, { reason: 'Supplier late', newDueDate: '2031-01-31', occurredAt: daysAgo(20) });
    await command(t, `${base}/commitments/plant/implementation`, { note: 'Inaugurated' });

    const res = await get(t, explain);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers.etag).toBe('"7"');
    const body = res.json<Json>();
    expect(body).toMatchObject({ agreementId: 'ag-time', commitmentId: 'plant', current: { status: 'implemented', progress: 100, dueDate: '2031-01-31' } });
    expect(body.steps.map((s: Json) => [s.revision, s.type, s.changed])).toEqual([
      [2, 'CommitmentAdded', { status: { from: null, to: 'pending' }, progress: { from: null, to: 0 }, dueDate: { from: null, to: '2030-06-30' } }],
      [3, 'ProgressReported', { status: { from: 'pending', to: 'in_progress' }, progress: { from: 0, to: 30 } }],
      [5, 'ProgressReported', { progress: { from: 30, to: 70 } }],
      [6, 'CommitmentDelayed', { status: { from: 'in_progress', to: 'delayed' }, dueDate: { from: '2030-06-30', to: '2031-01-31' } }],
      [7, 'CommitmentImplemented', { status: { from: 'delayed', to: 'implemented' }, progress: { from: 70, to: 100 } }],
    ]);
    // Each step carries the envelope the history shows for that revision.
    const history = await historyOf(base);
    for (const step of body.steps as Json[]) {
      const e = history[step.revision]!;
      expect(step).toEqual({ revision: e.revision, position: e.position, type: e.type, occurredAt: e.occurredAt, recordedAt: e.recordedAt, actor: 'anonymous', changed: step.changed });
    }
    expect(body.steps[1].occurredAt).toBe(new Date(Date.parse(body.steps[1].occurredAt)).toISOString());
  });

  it('answers 404 for an unknown agreement or commitment', async () => {
    await createAgreement(t, { id: 'ag-time', commitments: [commitmentInput({ id: 'plant' })] });
    expect(expectProblem(await get(t, '/v1/agreements/never-signed/commitments/plant/explain'), 404).code).toBe('agreement_not_found');
    expect(expectProblem(await get(t, `${base}/commitments/bridge/explain`), 404).code).toBe('commitment_not_found');
  });
});

describe('OpenAPI', () => {
  it('documents the review audit routes, the explain route and the three time parameters', async () => {
    const doc = (await ok('/openapi.json')).body;
    for (const path of ['/v1/reviews/{id}/history', '/v1/reviews/{id}/integrity', '/v1/agreements/{id}/commitments/{cid}/explain']) {
      expect(doc.paths[path]?.get, path).toBeDefined();
    }
    for (const path of ['/v1/agreements/{id}', '/v1/reviews/{id}']) {
      const params = doc.paths[path].get.parameters as Json[];
      for (const name of ['asOf', 'revision', 'effectiveAt']) {
        expect(params.find((p) => p.name === name)?.description, `${path} ${name}`).toEqual(expect.stringMatching(/\w{10}/));
      }
      expect(doc.paths[path].get.description).toMatch(/at most one/);
    }
    expect(doc.paths['/v1/reviews/{id}'].get.description).toMatch(/agenda .* is computed/);
  });
});
