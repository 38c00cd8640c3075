// The audit trail: history in stream order with its hash chain, tamper detection on the
// SQLite file itself, and `asOf` replays of the log to an instant.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { command, commitmentInput, createAgreement, expectProblem, get, sleep, type Json } from './testing/api-fixtures.js';

import { genesisHash } from '@cm/event-store';
// Real clock here: recordedAt is stamped by the store's clock, and asOf compares against it.
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(async () => {
  await t.close();
});

const base = '/v1/agreements/ag-audit';
const history = async (qs = '') => {
  const res = await get(t, `${base}/history${qs}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json<Json>().events as Json[];
};

/** Four commands, ~20 ms apart so each has its own recordedAt. */
async function seed(): Promise<void> {
  await createAgreement(t, { id: 'ag-audit', occurredAt: '2025-11-28T15:00:00Z', commitments: [commitmentInput({ id: 'plant', dueDate: '2030-06-30' })] });
  await sleep(20);
  await command(t, `${base}/commitments/plant/progress`, { percent: 40, note: 'Foundations poured', evidenceUrl: 'https://gob.example/informe.pdf', occurredAt: '2026-01-10T12:00:00Z' });
  await sleep(20);
  await command(t, `${base}/commitments/plant/delay`, { reason: 'Supplier late', newDueDate: '2031-01-31' });
  await sleep(20);
  await command(t, `${base}/commitments/plant/progress`, { percent: 55 });
}

describe('GET /v1/agreements/{id}/history', () => {
  it('lists the events in stream order with their envelope and a hash chain', async () => {
    await seed();
    const events = await history();
    expect(events.map((e) => [e.revision, e.type])).toEqual([
      [0, 'AgreementSigned'], [1, 'CommitmentAdded'], [2, 'ProgressReported'], [3, 'CommitmentDelayed'], [4, 'ProgressReported'],
    ]);
    const positions = events.map((e) => BigInt(e.position));
    for (let i = 1; i < positions.length; i++) expect(positions[i]! > positions[i - 1]!).toBe(true);
    for (const e of events) {
      expect(e).toMatchObject({ actor: 'anonymous', position: expect.stringMatching(/^\d+$/), hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(e.recordedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(e.occurredAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    expect(events[0]!.prevHash).toBe(genesisHash(2, 'agreement-ag-audit'));
    for (let i = 1; i < events.length; i++) expect(events[i]!.prevHash).toBe(events[i - 1]!.hash);
    // The signature and its commitment came in one append: one recordedAt.
    expect(events[1]!.recordedAt).toBe(events[0]!.recordedAt);
    expect(events[2]!.recordedAt > events[1]!.recordedAt).toBe(true);
    // occurredAt is what the caller said; recordedAt is the server's own clock.
    expect(events[2]!.occurredAt).toBe('2026-01-10T12:00:00.000Z');
    expect(events[2]!.recordedAt).not.toBe(events[2]!.occurredAt);
  });

  it('keeps data as the command gave it: a note stays a note', async () => {
    await seed();
    const events = await history();
    expect(events[2]!.data).toEqual({ commitmentId: 'plant', percent: 40, note: 'Foundations poured', evidenceUrl: 'https://gob.example/informe.pdf' });
    expect(events[3]!.data).toEqual({ commitmentId: 'plant', reason: 'Supplier late', previousDueDate: '2030-06-30', newDueDate: '2031-01-31' });
    expect(events[4]!.data).toEqual({ commitmentId: 'plant', percent: 55 });
    expect(events[1]!.data).toMatchObject({ commitmentId: 'plant', dueDate: '2030-06-30', responsible: { party: 'VEN', institution: 'Ministry of Health' } });
  });

  it('pages with fromRevision and limit', async () => {
    await seed();
    const all = await history();
    expect((await history('?fromRevision=1&limit=2')).map((e) => e.revision)).toEqual([1, 2]);
    const tail = await history('?fromRevision=3');
    expect(tail.map((e) => e.revision)).toEqual([3, 4]);
    expect(tail).toEqual(all.slice(3));
    expect(await history('?fromRevision=9')).toEqual([]);
    expect((await history('?limit=1')).map((e) => e.revision)).toEqual([0]);
  });

  it('answers 404 for an unknown agreement', async () => {
    expectProblem(await get(t, '/v1/agreements/never-signed/history'), 404);
  });
});

describe('GET /v1/agreements/{id}/integrity', () => {
  it('reports an untouched stream valid, with its last hash', async () => {
    await seed();
    const events = await history();
    const res = await get(t, `${base}/integrity`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ valid: true, events: 5, lastHash: events.at(-1)!.hash, firstInvalidRevision: null, reason: null, schemes: { 2: 5 } });
  });

  it('reports the first invalid revision after one stored event is edited in the SQLite file', async () => {
    await seed();
    const tampered = { commitmentId: 'plant', percent: 95, note: 'Foundations poured', evidenceUrl: 'https://gob.example/informe.pdf' };
    const changed = t.eventStore.db
      .prepare('UPDATE events SET data = ? WHERE stream = ? AND revision = ?')
      .run(JSON.stringify(tampered), 'agreement-ag-audit', 2).changes;
    expect(changed).toBe(1);
    const res = await get(t, `${base}/integrity`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ valid: false, events: 5, firstInvalidRevision: 2 });
  });

  it('notices an edit to the metadata too (who and when)', async () => {
    await seed();
    const row = t.eventStore.db.prepare('SELECT metadata FROM events WHERE stream = ? AND revision = ?').get('agreement-ag-audit', 3) as { metadata: string };
    const metadata = { ...JSON.parse(row.metadata), actor: 'someone-else' };
    t.eventStore.db.prepare('UPDATE events SET metadata = ? WHERE stream = ? AND revision = ?').run(JSON.stringify(metadata), 'agreement-ag-audit', 3);
    expect((await get(t, `${base}/integrity`)).json()).toMatchObject({ valid: false, firstInvalidRevision: 3 });
  });

  it('answers 404 for an unknown agreement', async () => {
    expectProblem(await get(t, '/v1/agreements/never-signed/integrity'), 404);
  });
});

describe('GET /v1/agreements/{id}?asOf=', () => {
  const at = async (asOf: string) => get(t, `${base}?asOf=${encodeURIComponent(asOf)}`);
  const minusMs = (iso: string, ms: number) => new Date(Date.parse(iso) - ms).toISOString();

  it('answers 404 for an instant before the agreement existed', async () => {
    await seed();
    const [signed] = await history();
    const p = expectProblem(await at(minusMs(signed!.recordedAt, 1)), 404);
    expect(p.code).toBe('agreement_not_found');
  });

  it('shows the state as recorded at each instant, and the earlier state between two events', async () => {
    await seed();
    const events = await history();

    const atSigning = await at(events[0]!.recordedAt);
    expect(atSigning.statusCode, atSigning.body).toBe(200);
    expect(atSigning.headers.etag).toBe('"1"');
    expect(atSigning.json()).toMatchObject({ id: 'ag-audit', revision: 1, status: 'signed', progress: 0 });

    // Just before the delay was recorded: the first progress report, not the delay.
    const between = (await at(minusMs(events[3]!.recordedAt, 1))).json<Json>();
    expect(between).toMatchObject({ revision: 2, status: 'in_implementation', progress: 40 });
    expect(between.commitments[0]).toMatchObject({ status: 'in_progress', progress: 40, dueDate: '2030-06-30', delays: [] });

    const afterDelay = (await at(events[3]!.recordedAt)).json<Json>();
    expect(afterDelay).toMatchObject({ revision: 3, status: 'delayed' });
    expect(afterDelay.commitments[0]).toMatchObject({ status: 'delayed', dueDate: '2031-01-31', originalDueDate: '2030-06-30', progress: 40 });
  });

  it('reads an instant given with an offset as the same instant', async () => {
    await seed();
    const events = await history();
    const utc = new Date(events[2]!.recordedAt);
    const withOffset = new Date(utc.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00');
    const body = (await at(withOffset)).json<Json>();
    expect(body.revision).toBe(2);
  });

  it('treats an instant in the future as now', async () => {
    await seed();
    const future = (await at('2999-01-01T00:00:00Z'));
    expect(future.statusCode).toBe(200);
    const body = future.json<Json>();
    const current = (await get(t, base)).json<Json>();
    expect(body.revision).toBe(4);
    expect(body.commitments).toEqual(current.commitments);
    expect(body.status).toBe(current.status);
    expect(Date.parse(body.asOf)).toBeLessThanOrEqual(Date.now());
  });
});
