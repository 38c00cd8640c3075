// Optimistic concurrency (ETag / If-Match), concurrent writers on one stream, and
// Idempotency-Key replays: what a tool that retries on a flaky network relies on.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, commitmentInput, createAgreement, expectNothingAppended, expectProblem, get, post, settle, type Json } from './testing/api-fixtures.js';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp();
});
afterEach(async () => {
  await t.close();
});

const base = '/v1/agreements/ag-one';
const seed = (n = 2) => createAgreement(t, { id: 'ag-one', commitments: Array.from({ length: n }, (_, i) => commitmentInput({ id: `c-${i}` })) });

describe('If-Match', () => {
  it('accepts the current revision from the ETag and answers with the next one', async () => {
    await seed(2);
    const current = await get(t, base);
    expect(current.headers.etag).toBe('"2"');
    const res = await post(t, `${base}/commitments/c-0/progress`, { percent: 10 }, { 'if-match': current.headers.etag as string });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<Json>().revision).toBe(3);
    expect(res.headers.etag).toBe('"3"');
    await settle(t, res.json<Json>().position);
    expect((await get(t, base)).headers.etag).toBe('"3"');
  });

  it('accepts a weak validator of the current revision', async () => {
    await seed(1);
    const res = await post(t, `${base}/commitments/c-0/progress`, { percent: 10 }, { 'if-match': 'W/"1"' });
    expect(res.statusCode, res.body).toBe(200);
  });

  it('answers a stale revision with 412 and appends nothing', async () => {
    await seed(2);
    await post(t, `${base}/commitments/c-0/progress`, { percent: 10 });
    const res = await expectNothingAppended(t, () => post(t, `${base}/commitments/c-1/progress`, { percent: 50 }, { 'if-match': '"2"' }));
    expect(expectProblem(res, 412).code).toBe('stale_revision');
    const history = (await get(t, `${base}/history`)).json<Json>();
    expect(history.events).toHaveLength(4);
  });

  it('answers a revision from the future with 412 too', async () => {
    await seed(1);
    expectProblem(await expectNothingAppended(t, () => post(t, `${base}/commitments/c-0/progress`, { percent: 5 }, { 'if-match': '"7"' })), 412);
  });

  it.each(['2', '"two"', '"1', 'abc', '"-1"'])('refuses a malformed If-Match %s with 400', async (header) => {
    await seed(1);
    const res = await expectNothingAppended(t, () => post(t, `${base}/commitments/c-0/progress`, { percent: 5 }, { 'if-match': header }));
    const p = expectProblem(res, 400);
    expect(p.errors.map((e: Json) => e.path)).toEqual(['If-Match']);
  });

  it('lets exactly one of two writers holding the same ETag win', async () => {
    await seed(2);
    const [a, b] = await Promise.all([
      post(t, `${base}/commitments/c-0/progress`, { percent: 10 }, { 'if-match': '"2"' }),
      post(t, `${base}/commitments/c-1/progress`, { percent: 20 }, { 'if-match': '"2"' }),
    ]);
    expect([a!.statusCode, b!.statusCode].sort()).toEqual([200, 412]);
    expect(await t.eventStore.streamRevision('agreement-ag-one')).toBe(3);
  });
});

describe('concurrent writers without If-Match', () => {
  it('accepts 20 simultaneous progress reports on one agreement and ends at the right revision', async () => {
    const created = await seed(20);
    expect(created.revision).toBe(20);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(t, `${base}/commitments/c-${i}/progress`, { percent: i + 1 })),
    );
    for (const res of answers) expect(res.statusCode, res.body).toBe(200);
    const bodies = answers.map((r) => r.json<Json>());
    expect(bodies.map((b) => b.revision).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => 21 + i));
    expect(await t.eventStore.streamRevision('agreement-ag-one')).toBe(40);

    const last = bodies.reduce((m, b) => (BigInt(b.position) > BigInt(m) ? b.position : m), '0');
    const a = (await get(t, `${base}?after=${last}`)).json<Json>();
    expect(a.revision).toBe(40);
    expect(a.commitments.map((c: Json) => c.progress)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(a.commitments.every((c: Json) => c.status === 'in_progress')).toBe(true);
  });

  it('keeps every report when the log is slow to read: writers without If-Match never get 412', async () => {
    await seed(20);
    // A log that takes 10 ms to read a stream (a busy disk, a networked store): every writer
    // now reads the same revision before anyone appends, so the writers really collide.
    const store = t.eventStore;
    const read = store.readStream.bind(store);
    store.readStream = async (...args) => {
      const events = await read(...args);
      await new Promise((r) => setTimeout(r, 10));
      return events;
    };
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post(t, `${base}/commitments/c-${i}/progress`, { percent: 50 })),
    );
    const refused = answers.filter((r) => r.statusCode !== 200).map((r) => `${r.statusCode} ${r.json<Json>().code}`);
    expect(refused).toEqual([]);
    expect(await t.eventStore.streamRevision('agreement-ag-one')).toBe(40);
    store.readStream = read;
    const events = (await get(t, `${base}/history?fromRevision=21`)).json<Json>().events;
    expect(events.map((e: Json) => e.data.commitmentId).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `c-${i}`).sort());
  });
});

describe('Idempotency-Key', () => {
  it('replays a create: same status, body and Location, nothing appended, marked as replayed', async () => {
    const key = { 'idempotency-key': 'create-1' };
    // No id: the repeat must not generate a second agreement with a new id.
    const first = await post(t, '/v1/agreements', agreementInput({ commitments: [commitmentInput()] }), key);
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const second = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ commitments: [commitmentInput()] }), key));
    expect(second.statusCode).toBe(201);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.headers.location).toBe(first.headers.location);
    expect(second.json()).toEqual(first.json());
    await settle(t, first.json<Json>().position);
    expect((await get(t, '/v1/agreements')).json<Json>().total).toBe(1);
  });

  it('replays a commitment command with the first answer even after the state moved on', async () => {
    await seed(1);
    const key = { 'idempotency-key': 'progress-42' };
    const first = await post(t, `${base}/commitments/c-0/progress`, { percent: 42 }, key);
    expect(first.statusCode).toBe(200);
    await post(t, `${base}/commitments/c-0/progress`, { percent: 60 });
    const again = await expectNothingAppended(t, () => post(t, `${base}/commitments/c-0/progress`, { percent: 42 }, key));
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json()).toEqual(first.json());
    expect(again.json<Json>()).toMatchObject({ progress: 42, revision: 2 });
  });

  it('treats the same body with keys in another order as the same request', async () => {
    await seed(1);
    const key = { 'idempotency-key': 'reordered' };
    await post(t, `${base}/commitments/c-0/progress`, { percent: 42, note: 'n' }, key);
    const again = await expectNothingAppended(t, () => t.app.inject({
      method: 'POST', url: `${base}/commitments/c-0/progress`, payload: '{"note":"n","percent":42}', headers: { ...key, 'content-type': 'application/json' },
    }));
    expect(again.statusCode).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
  });

  it('refuses the same key with another body, or on another resource, with 422', async () => {
    await seed(2);
    const key = { 'idempotency-key': 'k-reused' };
    expect((await post(t, `${base}/commitments/c-0/progress`, { percent: 10 }, key)).statusCode).toBe(200);
    const other = await expectNothingAppended(t, () => post(t, `${base}/commitments/c-0/progress`, { percent: 11 }, key));
    expect(expectProblem(other, 422).code).toBe('idempotency_key_reused');
    const elsewhere = await expectNothingAppended(t, () => post(t, `${base}/commitments/c-1/progress`, { percent: 10 }, key));
    expectProblem(elsewhere, 422);
  });

  it('appends once when two identical requests with the same key race', async () => {
    await seed(1);
    const key = { 'idempotency-key': 'racing' };
    const before = await t.eventStore.streamRevision('agreement-ag-one');
    const [a, b] = await Promise.all([
      post(t, `${base}/commitments/c-0/progress`, { percent: 30 }, key),
      post(t, `${base}/commitments/c-0/progress`, { percent: 30 }, key),
    ]);
    expect([a!.statusCode, b!.statusCode]).toEqual([200, 200]);
    expect(a!.json()).toEqual(b!.json());
    expect(await t.eventStore.streamRevision('agreement-ag-one')).toBe(before + 1);
  });

  it('appends once when two identical creates with the same key race', async () => {
    const key = { 'idempotency-key': 'racing-create' };
    const [a, b] = await Promise.all([
      post(t, '/v1/agreements', agreementInput(), key),
      post(t, '/v1/agreements', agreementInput(), key),
    ]);
    expect([a!.statusCode, b!.statusCode]).toEqual([201, 201]);
    expect(a!.json<Json>().id).toBe(b!.json<Json>().id);
    expect(await t.eventStore.listStreams()).toHaveLength(1);
  });

  it('does not remember refusals: a corrected request may reuse the key', async () => {
    await seed(1);
    const key = { 'idempotency-key': 'fix-and-retry' };
    const refused = await post(t, `${base}/commitments/c-0/delay`, { reason: 'Late', newDueDate: '2020-01-01' }, key);
    expectProblem(refused, 409);
    const ok = await post(t, `${base}/commitments/c-0/delay`, { reason: 'Late', newDueDate: '2030-01-01' }, key);
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json<Json>().dueDate).toBe('2030-01-01');
  });

  it('refuses a key longer than 200 characters with 400, appending nothing', async () => {
    await seed(1);
    const res = await expectNothingAppended(t, () => post(t, `${base}/commitments/c-0/progress`, { percent: 1 }, { 'idempotency-key': 'k'.repeat(201) }));
    expect(expectProblem(res, 400).errors.map((e: Json) => e.path)).toEqual(['Idempotency-Key']);
    expect((await post(t, `${base}/commitments/c-0/progress`, { percent: 1 }, { 'idempotency-key': 'k'.repeat(200) })).statusCode).toBe(200);
  });

  it('remembers answers across a restart on the same data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-api-restart-'));
    try {
      const one = await createTestApp({ dir });
      const first = await post(one, '/v1/agreements', agreementInput(), { 'idempotency-key': 'survives' });
      expect(first.statusCode).toBe(201);
      await one.close();
      const two = await createTestApp({ dir });
      try {
        const again = await expectNothingAppended(two, () => post(two, '/v1/agreements', agreementInput(), { 'idempotency-key': 'survives' }));
        expect(again.statusCode).toBe(201);
        expect(again.json()).toEqual(first.json());
      } finally {
        await two.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
