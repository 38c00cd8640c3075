// Agreements through HTTP: creating, reading back at once, listing with filters and pages.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SLUG_PATTERN } from '@cm/domain';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, command, commitmentInput, createAgreement, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(async () => {
  await t.close();
});

describe('POST /v1/agreements', () => {
  it('answers 201 with Location, ETag, revision and position; the first event is revision 0', async () => {
    const res = await post(t, '/v1/agreements', agreementInput({ id: 'ven-rus-health' }));
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/v1/agreements/ven-rus-health');
    expect(res.headers.etag).toBe('"0"');
    const body = res.json<Json>();
    expect(body).toMatchObject({
      id: 'ven-rus-health', title: 'Health cooperation agreement', kind: 'agreement', sector: 'health',
      parties: ['VEN', 'RUS'], signedAt: '2025-11-28', status: 'signed', revision: 0, commitments: [],
    });
    expect(body.position).toMatch(/^\d+$/);
    expect(body.position).toBe(await t.eventStore.headPosition());
  });

  it('puts an agreement with two commitments at revision 2, its position covering the last event', async () => {
    const res = await post(t, '/v1/agreements', agreementInput({
      id: 'with-two',
      commitments: [commitmentInput({ id: 'first' }), commitmentInput({ id: 'second', dueDate: '2027-12-31' })],
    }));
    expect(res.statusCode).toBe(201);
    expect(res.headers.etag).toBe('"2"');
    const body = res.json<Json>();
    expect(body.revision).toBe(2);
    expect(body.position).toBe(await t.eventStore.headPosition());
    expect(body.commitments.map((c: Json) => c.id)).toEqual(['first', 'second']);
    expect(body.commitmentCounts).toMatchObject({ total: 2, pending: 2 });
  });

  it('refuses an existing id with 409 and appends nothing', async () => {
    await createAgreement(t, { id: 'taken-id' });
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ id: 'taken-id', title: 'Another' })));
    const p = expectProblem(res, 409);
    expect(p.code).toBe('agreement_exists');
    const still = (await get(t, '/v1/agreements/taken-id')).json<Json>();
    expect(still.title).toBe('Health cooperation agreement');
  });

  it('generates slug ids from the title for the agreement and its commitments', async () => {
    const res = await post(t, '/v1/agreements', agreementInput({
      title: 'Acuerdo de Cooperación Energética — Fase II',
      commitments: [commitmentInput({ title: '¡Construir la central térmica!' })],
    }));
    expect(res.statusCode).toBe(201);
    const body = res.json<Json>();
    expect(body.id).toMatch(SLUG_PATTERN);
    expect(body.id).toMatch(/^acuerdo-de-cooperacion-energetica/);
    expect(res.headers.location).toBe(`/v1/agreements/${body.id}`);
    expect(body.commitments[0].id).toMatch(SLUG_PATTERN);
    expect(body.commitments[0].id).toMatch(/^construir-la-central-termica/);

    const again = (await post(t, '/v1/agreements', agreementInput({ title: 'Acuerdo de Cooperación Energética — Fase II' }))).json<Json>();
    expect(again.id).not.toBe(body.id);

    // A title with no Latin letter at all still yields a valid slug.
    const russian = await post(t, '/v1/agreements', agreementInput({ title: 'Соглашение о сотрудничестве' }));
    expect(russian.statusCode).toBe(201);
    expect(russian.json<Json>().id).toMatch(SLUG_PATTERN);
  });

  it('is visible at once to a GET with ?after=<position>, with the same ETag', async () => {
    const created = (await post(t, '/v1/agreements', agreementInput({ id: 'read-my-write', commitments: [commitmentInput({ id: 'c-one' })] }))).json<Json>();
    const res = await get(t, `/v1/agreements/read-my-write?after=${created.position}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    const body = res.json<Json>();
    expect(body).toMatchObject({ id: 'read-my-write', revision: 1, status: 'signed', progress: 0 });
    expect(body.commitments).toHaveLength(1);
    expect(body.commitments[0]).toMatchObject({ id: 'c-one', agreementId: 'read-my-write', status: 'pending', dueDate: '2027-06-30', originalDueDate: '2027-06-30', delays: [] });

    const list = (await get(t, `/v1/agreements?after=${created.position}`)).json<Json>();
    expect(list.items.map((a: Json) => a.id)).toContain('read-my-write');
  });

  it('keeps parties distinct and refuses an agreement of one party repeated', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ parties: ['VEN', 'VEN'] })));
    const p = expectProblem(res, 400);
    expect(p.errors.map((e: Json) => e.path)).toContain('parties');
  });

  it('refuses a commitment whose responsible party is not a party to the agreement', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({
      commitments: [commitmentInput({ responsible: { party: 'CUB', institution: 'Ministry of Health' } })],
    })));
    const p = expectProblem(res, 400);
    expect(p.errors.map((e: Json) => e.path)).toContain('commitments.0.responsible.party');
  });
});

describe('GET /v1/agreements/{id}', () => {
  const SUMMARY_FIELDS = ['id', 'title', 'kind', 'sector', 'parties', 'signedAt', 'session', 'status', 'progress', 'commitmentCounts', 'nextReviewAt', 'lastReviewedAt', 'revision', 'updatedAt'];
  const COMMITMENT_FIELDS = ['id', 'agreementId', 'title', 'description', 'responsible', 'dueDate', 'originalDueDate', 'status', 'overdue', 'progress', 'lastUpdateAt', 'implementedAt', 'delays'];

  it('carries every field of the contract, in the list and in the detail', async () => {
    const created = await createAgreement(t, { id: 'full-shape', summary: 'Cooperation in public health', session: { name: 'CIAN XIX', date: '2025-11-28' }, commitments: [commitmentInput({ id: 'c-1', description: 'Two plants' })] });
    const detail = (await get(t, '/v1/agreements/full-shape')).json<Json>();
    expect(Object.keys(detail)).toEqual(expect.arrayContaining([...SUMMARY_FIELDS, 'summary', 'commitments', 'reviews']));
    expect(Object.keys(detail.commitments[0])).toEqual(expect.arrayContaining(COMMITMENT_FIELDS));
    expect(detail).toMatchObject({ summary: 'Cooperation in public health', session: { name: 'CIAN XIX', date: '2025-11-28' }, nextReviewAt: null, lastReviewedAt: null, reviews: [] });
    expect(detail.commitmentCounts).toEqual({ total: 1, pending: 1, in_progress: 0, delayed: 0, implemented: 0, cancelled: 0, overdue: 0 });
    expect(detail.commitments[0]).toMatchObject({ description: 'Two plants', lastUpdateAt: null, implementedAt: null });
    const [signedEvent] = (await get(t, '/v1/agreements/full-shape/history')).json<Json>().events;
    expect(detail.updatedAt).toBe(signedEvent.recordedAt);
    expect(created.updatedAt).toBe(signedEvent.recordedAt);

    const item = (await get(t, '/v1/agreements')).json<Json>().items[0];
    expect(Object.keys(item)).toEqual(expect.arrayContaining(SUMMARY_FIELDS));
    expect(item).toMatchObject({ id: 'full-shape', revision: 1, updatedAt: detail.updatedAt });
  });

  it('answers 404 problem+json for an unknown agreement', async () => {
    const p = expectProblem(await get(t, '/v1/agreements/no-such-agreement'), 404);
    expect(p.code).toBe('agreement_not_found');
  });

  it('answers 404 for an unknown commitment of a known agreement, and for an unknown route', async () => {
    await createAgreement(t, { id: 'known-one' });
    expectProblem(await get(t, '/v1/agreements/known-one/commitments/no-such-commitment'), 404);
    expectProblem(await get(t, '/v1/agreements/no-such-agreement/commitments/whatever'), 404);
    expectProblem(await get(t, '/v1/nothing-here'), 404);
  });

  it('answers a command on an unknown agreement with 404 and appends nothing', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/no-such-agreement/commitments', commitmentInput()));
    expectProblem(res, 404);
  });

  it('starts an agreement with no commitments as signed, at progress 0', async () => {
    await createAgreement(t, { id: 'empty-agreement' });
    const body = (await get(t, '/v1/agreements/empty-agreement')).json<Json>();
    expect(body.status).toBe('signed');
    expect(body.progress).toBe(0);
    const listed = (await get(t, '/v1/agreements?status=signed')).json<Json>();
    expect(listed.items.map((a: Json) => a.id)).toEqual(['empty-agreement']);
  });

  it('shows the agreement after termination as terminated and refuses further commands with 409', async () => {
    await createAgreement(t, { id: 'to-terminate', commitments: [commitmentInput({ id: 'c-1' })] });
    const ended = await command(t, '/v1/agreements/to-terminate/termination', { reason: 'Superseded by a new treaty' });
    expect(ended).toMatchObject({ status: 'terminated', revision: 2 });
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/to-terminate/commitments/c-1/progress', { percent: 10 }));
    expectProblem(res, 409);
  });
});

describe('GET /v1/agreements (list)', () => {
  async function seed(): Promise<void> {
    await createAgreement(t, { id: 'health-ven-rus', title: 'Acuerdo de Salud Pública', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: { name: 'CIAN XIX', date: '2025-11-28' } });
    await createAgreement(t, { id: 'energy-ven-rus', title: 'Energy Protocol', kind: 'protocol', sector: 'energy', parties: ['VEN', 'RUS'], signedAt: '2025-10-01', session: { name: 'CIAN XIX', date: '2025-11-28' } });
    await createAgreement(t, { id: 'energy-cub-ven', title: 'Refinery memorandum', kind: 'memorandum', sector: 'energy', parties: ['CUB', 'VEN'], signedAt: '2024-05-05', session: { name: 'CIAN XVIII', date: '2024-05-05' } });
    await createAgreement(t, {
      id: 'health-cub-rus', title: 'SALUD y farmacia', sector: 'health', parties: ['CUB', 'RUS'], signedAt: '2023-01-15',
      commitments: [commitmentInput({ id: 'cr-1', responsible: { party: 'CUB', institution: 'MINSAP' } })],
    });
    await command(t, '/v1/agreements/health-cub-rus/commitments/cr-1/progress', { percent: 30 });
  }
  const ids = (body: Json) => body.items.map((a: Json) => a.id);

  it('lists newest signature first with total and no next cursor when everything fits', async () => {
    await seed();
    const body = (await get(t, '/v1/agreements')).json<Json>();
    expect(ids(body)).toEqual(['health-ven-rus', 'energy-ven-rus', 'energy-cub-ven', 'health-cub-rus']);
    expect(body.total).toBe(4);
    expect(body.nextCursor).toBeNull();
    expect(body.items[3]).toMatchObject({ status: 'in_implementation', progress: 30, commitmentCounts: { total: 1, in_progress: 1 } });
  });

  it('filters by sector, status, party and session', async () => {
    await seed();
    expect(ids((await get(t, '/v1/agreements?sector=energy')).json())).toEqual(['energy-ven-rus', 'energy-cub-ven']);
    expect(ids((await get(t, '/v1/agreements?status=in_implementation')).json())).toEqual(['health-cub-rus']);
    expect(ids((await get(t, '/v1/agreements?party=CUB')).json())).toEqual(['energy-cub-ven', 'health-cub-rus']);
    expect(ids((await get(t, '/v1/agreements?session=CIAN%20XIX')).json())).toEqual(['health-ven-rus', 'energy-ven-rus']);
    const both = (await get(t, '/v1/agreements?sector=health&party=RUS&status=in_implementation')).json<Json>();
    expect(ids(both)).toEqual(['health-cub-rus']);
    expect(both.total).toBe(1);
  });

  it('matches q against titles ignoring case and accents', async () => {
    await seed();
    expect(ids((await get(t, '/v1/agreements?q=salud')).json())).toEqual(['health-ven-rus', 'health-cub-rus']);
    expect(ids((await get(t, `/v1/agreements?q=${encodeURIComponent('PÚBLICA')}`)).json())).toEqual(['health-ven-rus']);
    expect(ids((await get(t, '/v1/agreements?q=publica')).json())).toEqual(['health-ven-rus']);
    const none = (await get(t, '/v1/agreements?q=nuclear')).json<Json>();
    expect(none).toEqual({ items: [], total: 0, nextCursor: null });
  });

  it('walks every page with limit and cursor: no duplicates, nothing missed, total right', async () => {
    const created: string[] = [];
    for (let i = 0; i < 7; i++) {
      // Two agreements share each signature date, so the id breaks ties across page edges.
      const a = await createAgreement(t, { id: `paged-${i}`, signedAt: `2025-0${1 + Math.floor(i / 2)}-10` });
      created.push(a.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/agreements?limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await get(t, url);
      expect(res.statusCode).toBe(200);
      const body = res.json<Json>();
      expect(body.total).toBe(7);
      expect(body.items.length).toBeLessThanOrEqual(3);
      seen.push(...ids(body));
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort()).toEqual([...created].sort());
    // Newest signature first all the way through.
    const dates = seen.map((id) => Number(id.split('-')[1]));
    expect(dates.map((i) => Math.floor(i / 2))).toEqual([3, 2, 2, 1, 1, 0, 0]);
  });
});
