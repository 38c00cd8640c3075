// Commitments through HTTP: the life of one commitment, what it does to its agreement's status
// and progress, "overdue" against the app clock, the cross-agreement list and the dashboard.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { command, commitmentInput, createAgreement, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';

const NOW = '2026-03-01T09:00:00.000Z';
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: NOW });
});
afterEach(async () => {
  await t.close();
});

const base = '/v1/agreements/ag-health';
const agreement = async () => (await get(t, base)).json<Json>();
const commitment = (a: Json, id: string) => a.commitments.find((c: Json) => c.id === id);

async function seedOne(dueDate = '2026-06-30'): Promise<void> {
  // Recorded on its signing day, so that reports dated since then are possible.
  await createAgreement(t, { id: 'ag-health', occurredAt: '2025-11-28T15:00:00Z', commitments: [commitmentInput({ id: 'plant', dueDate })] });
}

describe('adding a commitment', () => {
  it('answers 201 with Location, the commitment, agreementStatus, revision and position', async () => {
    await seedOne();
    const res = await post(t, `${base}/commitments`, commitmentInput({ id: 'clinic', title: 'Build ten clinics', dueDate: '2027-01-31', responsible: { party: 'RUS', institution: 'Rosatom' } }));
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe(`${base}/commitments/clinic`);
    expect(res.headers.etag).toBe('"2"');
    const body = res.json<Json>();
    expect(body).toMatchObject({
      id: 'clinic', agreementId: 'ag-health', title: 'Build ten clinics', dueDate: '2027-01-31', originalDueDate: '2027-01-31',
      responsible: { party: 'RUS', institution: 'Rosatom' }, status: 'pending', progress: 0, overdue: false,
      agreementStatus: 'signed', revision: 2, delays: [],
    });
    expect(body.position).toBe(await t.eventStore.headPosition());

    const one = await get(t, `${base}/commitments/clinic?after=${body.position}`);
    expect(one.statusCode).toBe(200);
    expect(one.headers.etag).toBe('"2"');
    expect(one.json()).toMatchObject({ id: 'clinic', agreementTitle: 'Health cooperation agreement', sector: 'health' });
    expect((await agreement()).commitmentCounts.total).toBe(2);
  });

  it('refuses a commitment id already in the agreement with 409', async () => {
    await seedOne();
    const res = await expectNothingAppended(t, () => post(t, `${base}/commitments`, commitmentInput({ id: 'plant' })));
    expectProblem(res, 409);
  });
});

describe('reporting progress', () => {
  it('moves the commitment to in_progress and the agreement to in_implementation', async () => {
    await seedOne();
    const answer = await command(t, `${base}/commitments/plant/progress`, { percent: 40, note: 'Foundations poured' });
    expect(answer).toMatchObject({ id: 'plant', status: 'in_progress', progress: 40, agreementStatus: 'in_implementation', revision: 2, lastUpdateAt: NOW });
    const a = await agreement();
    expect(a).toMatchObject({ status: 'in_implementation', progress: 40, revision: 2 });
    expect(commitment(a, 'plant')).toMatchObject({ status: 'in_progress', progress: 40 });
  });

  it('lets the percentage go down when an estimate is revised', async () => {
    await seedOne();
    await command(t, `${base}/commitments/plant/progress`, { percent: 60 });
    const answer = await command(t, `${base}/commitments/plant/progress`, { percent: 35 });
    expect(answer).toMatchObject({ progress: 35, status: 'in_progress' });
    expect(commitment(await agreement(), 'plant').progress).toBe(35);
  });

  it('keeps a delayed commitment delayed', async () => {
    await seedOne();
    await command(t, `${base}/commitments/plant/delay`, { reason: 'Supplier late', newDueDate: '2026-12-31' });
    const answer = await command(t, `${base}/commitments/plant/progress`, { percent: 70 });
    expect(answer).toMatchObject({ status: 'delayed', progress: 70, agreementStatus: 'delayed' });
    expect(commitment(await agreement(), 'plant').status).toBe('delayed');
  });
});

describe('implementation', () => {
  it('sets progress 100 and implementedAt to the occurredAt given; the agreement becomes implemented', async () => {
    await seedOne();
    await command(t, `${base}/commitments/plant/progress`, { percent: 20 });
    const answer = await command(t, `${base}/commitments/plant/implementation`, { note: 'Inaugurated', occurredAt: '2026-02-20T15:30:00+01:00' });
    expect(answer).toMatchObject({ status: 'implemented', progress: 100, implementedAt: '2026-02-20T14:30:00.000Z', agreementStatus: 'implemented' });
    const a = await agreement();
    expect(a).toMatchObject({ status: 'implemented', progress: 100 });
    expect(commitment(a, 'plant')).toMatchObject({ status: 'implemented', progress: 100, implementedAt: '2026-02-20T14:30:00.000Z', overdue: false });
  });
});

describe('delay', () => {
  it('moves the due date, keeps originalDueDate and lists every delay', async () => {
    await seedOne('2026-06-30');
    const first = await command(t, `${base}/commitments/plant/delay`, { reason: 'Supplier late', newDueDate: '2026-09-30', occurredAt: '2026-02-01T10:00:00Z' });
    expect(first).toMatchObject({ status: 'delayed', dueDate: '2026-09-30', originalDueDate: '2026-06-30', agreementStatus: 'delayed' });
    await command(t, `${base}/commitments/plant/delay`, { reason: 'Funding', newDueDate: '2027-03-31' });
    const c = commitment(await agreement(), 'plant');
    expect(c).toMatchObject({ status: 'delayed', dueDate: '2027-03-31', originalDueDate: '2026-06-30' });
    expect(c.delays).toMatchObject([
      { reason: 'Supplier late', previousDueDate: '2026-06-30', newDueDate: '2026-09-30', at: '2026-02-01T10:00:00.000Z' },
      { reason: 'Funding', previousDueDate: '2026-09-30', newDueDate: '2027-03-31', at: NOW },
    ]);
    expect((await agreement()).status).toBe('delayed');
  });

  it.each(['2026-06-30', '2026-01-15'])('refuses newDueDate %s (not later) with 409 naming newDueDate, appending nothing', async (newDueDate) => {
    await seedOne('2026-06-30');
    const res = await expectNothingAppended(t, () => post(t, `${base}/commitments/plant/delay`, { reason: 'Because', newDueDate }));
    const p = expectProblem(res, 409);
    expect(p.errors.map((e: Json) => e.path)).toEqual(['newDueDate']);
    expect(commitment(await agreement(), 'plant')).toMatchObject({ dueDate: '2026-06-30', status: 'pending', delays: [] });
  });
});

describe('cancellation', () => {
  it('cancels the commitment, and progress becomes the mean over the commitments not cancelled', async () => {
    await createAgreement(t, {
      id: 'ag-health',
      commitments: [commitmentInput({ id: 'c-a' }), commitmentInput({ id: 'c-b' }), commitmentInput({ id: 'c-c' })],
    });
    await command(t, `${base}/commitments/c-a/progress`, { percent: 50 });
    await command(t, `${base}/commitments/c-b/progress`, { percent: 20 });
    await command(t, `${base}/commitments/c-c/progress`, { percent: 90 });
    expect((await agreement()).progress).toBeCloseTo(53.3, 1);
    const answer = await command(t, `${base}/commitments/c-c/cancellation`, { reason: 'Dropped by both parties' });
    expect(answer).toMatchObject({ id: 'c-c', status: 'cancelled' });
    const a = await agreement();
    expect(a.progress).toBe(35);
    expect(a.commitmentCounts).toMatchObject({ total: 3, in_progress: 2, cancelled: 1 });
  });

  it('makes an agreement implemented when every commitment left is implemented', async () => {
    await createAgreement(t, { id: 'ag-health', commitments: [commitmentInput({ id: 'c-a' }), commitmentInput({ id: 'c-b' })] });
    await command(t, `${base}/commitments/c-a/implementation`, {});
    expect((await agreement()).status).toBe('in_implementation');
    const answer = await command(t, `${base}/commitments/c-b/cancellation`, { reason: 'Not needed' });
    expect(answer.agreementStatus).toBe('implemented');
    expect(await agreement()).toMatchObject({ status: 'implemented', progress: 100 });
  });
});

describe('a commitment that can no longer change', () => {
  const commands: [string, Json][] = [
    ['progress', { percent: 10 }],
    ['implementation', {}],
    ['delay', { reason: 'Late', newDueDate: '2030-01-01' }],
    ['cancellation', { reason: 'Gone' }],
  ];

  for (const final of ['implementation', 'cancellation'] as const) {
    it(`refuses every command with 409 after ${final}, appending nothing`, async () => {
      await seedOne();
      await command(t, `${base}/commitments/plant/${final}`, final === 'cancellation' ? { reason: 'Dropped' } : {});
      for (const [name, body] of commands) {
        const res = await expectNothingAppended(t, () => post(t, `${base}/commitments/plant/${name}`, body));
        const p = expectProblem(res, 409);
        expect(p.code).toBe(final === 'implementation' ? 'commitment_implemented' : 'commitment_cancelled');
      }
      expect(commitment(await agreement(), 'plant').status).toBe(final === 'implementation' ? 'implemented' : 'cancelled');
    });
  }

  it('answers 404 for a command on an unknown commitment', async () => {
    await seedOne();
    const res = await expectNothingAppended(t, () => post(t, `${base}/commitments/no-such-one/progress`, { percent: 10 }));
    expect(expectProblem(res, 404).code).toBe('commitment_not_found');
  });
});

describe('overdue, against the app clock', () => {
  it('turns a commitment overdue the day after its due date, and the agreement delayed', async () => {
    await seedOne('2026-06-30');
    let a = await agreement();
    expect(commitment(a, 'plant').overdue).toBe(false);
    expect(a.status).toBe('signed');

    t.setNow('2026-06-30T23:59:00Z');
    a = await agreement();
    expect(commitment(a, 'plant').overdue).toBe(false);

    t.setNow('2026-07-01T00:01:00Z');
    a = await agreement();
    expect(commitment(a, 'plant').overdue).toBe(true);
    expect(a.status).toBe('delayed');
    expect(a.commitmentCounts.overdue).toBe(1);
    expect((await get(t, '/v1/agreements?status=delayed')).json<Json>().total).toBe(1);
    expect((await get(t, '/v1/dashboard')).json<Json>().commitments.overdue).toBe(1);
  });

  it('never counts an implemented or cancelled commitment overdue', async () => {
    await createAgreement(t, { id: 'ag-health', commitments: [commitmentInput({ id: 'done', dueDate: '2026-04-01' }), commitmentInput({ id: 'gone', dueDate: '2026-04-01' })] });
    await command(t, `${base}/commitments/done/implementation`, {});
    await command(t, `${base}/commitments/gone/cancellation`, { reason: 'Dropped' });
    t.setNow('2026-12-01T00:00:00Z');
    const a = await agreement();
    expect(a.commitments.map((c: Json) => c.overdue)).toEqual([false, false]);
    expect(a.status).toBe('implemented');
    expect(a.commitmentCounts.overdue).toBe(0);
  });

  it('answers a command with overdue computed at the app clock', async () => {
    await seedOne('2026-06-30');
    t.setNow('2026-08-01T00:00:00Z');
    const answer = await command(t, `${base}/commitments/plant/progress`, { percent: 10 });
    expect(answer).toMatchObject({ overdue: true, agreementStatus: 'delayed', lastUpdateAt: '2026-08-01T00:00:00.000Z' });
  });
});

describe('GET /v1/commitments', () => {
  async function seed(): Promise<void> {
    await createAgreement(t, {
      id: 'ag-health', sector: 'health', parties: ['VEN', 'RUS'], title: 'Health',
      commitments: [
        commitmentInput({ id: 'h-vaccines', dueDate: '2026-05-01', responsible: { party: 'VEN', institution: 'Ministerio de Salud' } }),
        commitmentInput({ id: 'h-clinics', dueDate: '2026-09-01', responsible: { party: 'RUS', institution: 'Ministry of Health' } }),
        commitmentInput({ id: 'h-training', dueDate: '2027-01-15', responsible: { party: 'RUS', institution: 'Ministry of Health' } }),
      ],
    });
    await createAgreement(t, {
      id: 'ag-energy', sector: 'energy', parties: ['VEN', 'CUB'], title: 'Energy',
      commitments: [
        commitmentInput({ id: 'e-refinery', dueDate: '2026-02-01', responsible: { party: 'CUB', institution: 'CUPET' } }),
        commitmentInput({ id: 'a-grid', dueDate: '2026-09-01', responsible: { party: 'VEN', institution: 'Corpoelec' } }),
      ],
    });
    await command(t, '/v1/agreements/ag-health/commitments/h-clinics/progress', { percent: 25 });
    await command(t, '/v1/agreements/ag-energy/commitments/a-grid/implementation', {});
  }
  const ids = (body: Json) => body.items.map((c: Json) => c.id);
  const list = async (qs: string) => {
    const res = await get(t, `/v1/commitments${qs}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<Json>();
  };

  it('lists every commitment by due date then id, with the agreement title and sector', async () => {
    await seed();
    const body = await list('');
    expect(ids(body)).toEqual(['e-refinery', 'h-vaccines', 'a-grid', 'h-clinics', 'h-training']);
    expect(body.total).toBe(5);
    expect(body.nextCursor).toBeNull();
    expect(body.items[0]).toMatchObject({ agreementId: 'ag-energy', agreementTitle: 'Energy', sector: 'energy', overdue: true, status: 'pending' });
  });

  it('filters by status, overdue, party, institution, sector and agreement', async () => {
    await seed();
    expect(ids(await list('?status=in_progress'))).toEqual(['h-clinics']);
    expect(ids(await list('?status=implemented'))).toEqual(['a-grid']);
    expect(ids(await list('?overdue=true'))).toEqual(['e-refinery']);
    expect(ids(await list('?party=RUS'))).toEqual(['h-clinics', 'h-training']);
    expect(ids(await list('?institution=ministry%20of%20health'))).toEqual(['h-clinics', 'h-training']);
    expect(ids(await list('?sector=energy'))).toEqual(['e-refinery', 'a-grid']);
    expect(ids(await list('?agreementId=ag-health'))).toEqual(['h-vaccines', 'h-clinics', 'h-training']);
    expect((await list('?agreementId=ag-health&party=RUS&status=pending')).total).toBe(1);
  });

  it('filters by due date window', async () => {
    await seed();
    expect(ids(await list('?dueBefore=2026-06-01'))).toEqual(['e-refinery', 'h-vaccines']);
    expect(ids(await list('?dueAfter=2026-06-01'))).toEqual(['a-grid', 'h-clinics', 'h-training']);
    expect(ids(await list('?dueAfter=2026-03-01&dueBefore=2026-12-31'))).toEqual(['h-vaccines', 'a-grid', 'h-clinics']);
  });

  it('follows the app clock for overdue=true', async () => {
    await seed();
    t.setNow('2026-10-01T00:00:00Z');
    expect(ids(await list('?overdue=true'))).toEqual(['e-refinery', 'h-vaccines', 'h-clinics']);
  });

  it('pages with limit and cursor in the same order', async () => {
    await seed();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const body: Json = await list(`?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(body.total).toBe(5);
      seen.push(...ids(body));
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(['e-refinery', 'h-vaccines', 'a-grid', 'h-clinics', 'h-training']);
  });
});

describe('GET /v1/dashboard', () => {
  it('counts agreements by status and sector, and commitments by status and overdue', async () => {
    await createAgreement(t, { id: 'ag-health', sector: 'health', commitments: [commitmentInput({ id: 'h-1', dueDate: '2026-01-01' }), commitmentInput({ id: 'h-2' })] });
    await createAgreement(t, { id: 'ag-health-2', sector: 'health', commitments: [commitmentInput({ id: 'h-3' })] });
    await createAgreement(t, { id: 'ag-energy', sector: 'energy', commitments: [commitmentInput({ id: 'e-1' })] });
    await command(t, '/v1/agreements/ag-health-2/commitments/h-3/progress', { percent: 10 });
    await command(t, '/v1/agreements/ag-energy/commitments/e-1/implementation', {});
    await command(t, '/v1/agreements/ag-health/commitments/h-2/cancellation', { reason: 'Dropped' });

    const res = await get(t, '/v1/dashboard');
    expect(res.statusCode).toBe(200);
    const d = res.json<Json>();
    expect(d.agreements.total).toBe(3);
    expect(d.agreements.byStatus).toEqual({ signed: 0, in_implementation: 1, delayed: 1, implemented: 1, cancelled: 0, terminated: 0 });
    expect(d.agreements.bySector.health).toEqual({ total: 2, byStatus: { signed: 0, in_implementation: 1, delayed: 1, implemented: 0, cancelled: 0, terminated: 0 } });
    expect(d.agreements.bySector.energy).toEqual({ total: 1, byStatus: { signed: 0, in_implementation: 0, delayed: 0, implemented: 1, cancelled: 0, terminated: 0 } });
    expect(d.commitments).toEqual({ total: 4, byStatus: { pending: 1, in_progress: 1, delayed: 0, implemented: 1, cancelled: 1 }, overdue: 1 });
    expect(d.upcomingReviews).toEqual([]);
  });
});
