// X-Request-Id and X-Correlation-Id come from callers: taken only in a bounded form, and a
// correlation id is stored under the caller's key, so one key can never attach its events to
// another key's correlation in the history.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';
import { agreementInput, commitmentInput, get, post, type Json } from './testing/api-fixtures.js';

const ven: TestKey = { name: 'ven-tool', role: 'editor', parties: ['VEN'], secret: 'cm_test_ven_secret_0001' };
const rus: TestKey = { name: 'rus-tool', role: 'editor', parties: ['RUS'], secret: 'cm_test_rus_secret_0001' };
const admin: TestKey = { name: 'auditor-admin', role: 'admin', secret: 'cm_test_admin_secret_01' };
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: '2026-03-01T09:00:00.000Z', keys: [ven, rus, admin] });
  const res = await post(t, '/v1/agreements', agreementInput({
    id: 'ven-rus-health', occurredAt: '2025-11-28T15:00:00Z',
    commitments: [commitmentInput({ id: 'ven-lab' }), commitmentInput({ id: 'rus-lab', responsible: { party: 'RUS', institution: 'Gamaleya' } })],
  }), bearer(admin));
  expect(res.statusCode, res.body).toBe(201);
});
afterEach(async () => {
  await t.close();
});

const history = async (): Promise<Json[]> => (await get(t, '/v1/agreements/ven-rus-health/history', bearer(admin))).json<Json>().events;

describe('X-Request-Id', () => {
  it('is echoed when it has the bounded form, and replaced by a generated one otherwise', async () => {
    const ok = await get(t, '/health', { 'x-request-id': 'ministry-tool.42_a' });
    expect(ok.headers['x-request-id']).toBe('ministry-tool.42_a');
    for (const bad of ['x'.repeat(65), 'has space', 'a"b', 'ok\u00e9', '']) {
      const res = await get(t, '/health', { 'x-request-id': bad });
      expect(res.headers['x-request-id']).not.toBe(bad);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
    const long = await get(t, '/health', { 'x-request-id': 'r'.repeat(10_000) });
    expect(String(long.headers['x-request-id']).length).toBe(36);
  });
});

describe('X-Correlation-Id', () => {
  it("is stored under the caller's key, so another key's events never share it", async () => {
    const a = await post(t, '/v1/agreements/ven-rus-health/commitments/ven-lab/progress', { percent: 10 }, { ...bearer(ven), 'x-correlation-id': 'minutes-7' });
    expect(a.statusCode, a.body).toBe(200);
    const b = await post(t, '/v1/agreements/ven-rus-health/commitments/rus-lab/progress', { percent: 20 }, { ...bearer(rus), 'x-correlation-id': 'minutes-7' });
    expect(b.statusCode, b.body).toBe(200);
    // RUS also tries to spell out VEN's stored correlation: it is namespaced again under its own key.
    const c = await post(t, '/v1/agreements/ven-rus-health/commitments/rus-lab/progress', { percent: 30 }, { ...bearer(rus), 'x-correlation-id': 'ven-tool:minutes-7' });
    expect(c.statusCode, c.body).toBe(200);
    const events = (await history()).slice(-3);
    expect(events.map((e) => e.correlationId)).toEqual(['ven-tool:minutes-7', 'rus-tool:minutes-7', expect.not.stringMatching(/^ven-tool:/)]);
  });

  it('is replaced by a generated one when it is over 64 characters or has other characters', async () => {
    for (const bad of ['c'.repeat(65), 'a b', 'x:y']) {
      const res = await post(t, '/v1/agreements/ven-rus-health/commitments/ven-lab/progress', { percent: 15 }, { ...bearer(ven), 'x-correlation-id': bad });
      expect(res.statusCode, res.body).toBe(200);
      const last = (await history()).at(-1)!;
      expect(last.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
