import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(async () => {
  await t.close();
});

const post = (url: string, body: unknown) => t.app.inject({ method: 'POST', url, payload: body as object });
const get = (url: string) => t.app.inject({ method: 'GET', url });

async function agreementWithProgress() {
  await post('/v1/agreements', {
    id: 'vaccine-protocol', title: 'Vaccine protocol', kind: 'protocol', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
    commitments: [{ id: 'joint-lab', title: 'Open the joint laboratory', dueDate: '2027-06-30', responsible: { party: 'VEN', institution: 'Ministry of Health' } }],
  });
  const r = await post('/v1/agreements/vaccine-protocol/commitments/joint-lab/progress', { percent: 80 });
  expect(r.statusCode).toBe(200);
  return r.json<{ revision: number }>().revision;
}

describe('corrections', () => {
  it('corrects a wrong progress figure: state, lists and dashboard use it, history keeps both events', async () => {
    const revision = await agreementWithProgress();
    const c = await post('/v1/agreements/vaccine-protocol/corrections', { revision, percent: 30, reason: 'typed 80 for 30' });
    expect(c.statusCode).toBe(200);
    const body = c.json<{ progress: number; commitments: { progress: number }[]; position: string }>();
    expect(body.commitments[0]!.progress).toBe(30);
    expect(body.progress).toBe(30);
    const list = (await get(`/v1/commitments?agreementId=vaccine-protocol&after=${body.position}`)).json<{ items: { progress: number }[] }>();
    expect(list.items[0]!.progress).toBe(30);
    const history = (await get('/v1/agreements/vaccine-protocol/history')).json<{ events: { type: string; data: Record<string, unknown> }[] }>();
    expect(history.events.map((e) => e.type)).toEqual(['AgreementSigned', 'CommitmentAdded', 'ProgressReported', 'ProgressCorrected']);
    expect(history.events[2]!.data.percent).toBe(80);
    expect(history.events[3]!.data).toMatchObject({ correctsRevision: revision, percent: 30 });
    expect((await get('/v1/agreements/vaccine-protocol/integrity')).json()).toMatchObject({ valid: true, events: 4 });
  });

  it('corrects a wrong due date given at signature', async () => {
    await agreementWithProgress();
    const c = await post('/v1/agreements/vaccine-protocol/corrections', { revision: 1, dueDate: '2027-07-31', reason: 'wrong month' });
    expect(c.json<{ commitments: { dueDate: string; originalDueDate: string }[] }>().commitments[0]).toMatchObject({ dueDate: '2027-07-31', originalDueDate: '2027-07-31' });
  });

  it('refuses a revision with nothing to correct, or a value of the wrong kind, naming the field and appending nothing', async () => {
    const revision = await agreementWithProgress();
    const head = await t.eventStore.headPosition();
    const r1 = await post('/v1/agreements/vaccine-protocol/corrections', { revision: 0, percent: 10, reason: 'x' });
    expect(r1.statusCode).toBe(400);
    expect(r1.json<{ errors: { path: string }[] }>().errors[0]!.path).toBe('revision');
    const r2 = await post('/v1/agreements/vaccine-protocol/corrections', { revision, dueDate: '2027-01-01', reason: 'x' });
    expect(r2.statusCode).toBe(400);
    expect(r2.json<{ errors: { path: string }[] }>().errors[0]!.path).toBe('percent');
    expect(await t.eventStore.headPosition()).toBe(head);
  });
});
