// What a refusal echoes of the input is bounded: a huge body of unknown keys or a huge path
// gets a small problem+json, not one larger than what was sent.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, expectProblem, get, post } from './testing/api-fixtures.js';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: '2026-03-01T09:00:00.000Z' });
});
afterEach(async () => {
  await t.close();
});

describe('bounded echoes', () => {
  it('answers a 600 KB body of unknown keys with at most 20 errors and a small body', async () => {
    const body: Record<string, unknown> = agreementInput();
    for (let i = 0; i < 15_000; i++) body[`unknown_key_${i}_${'x'.repeat(20)}`] = 1;
    expect(JSON.stringify(body).length).toBeGreaterThan(600_000);
    body[`k${'y'.repeat(5000)}`] = 1;
    const res = await post(t, '/v1/agreements', body);
    const p = expectProblem(res, 400);
    expect(res.payload.length).toBeLessThan(8_000);
    expect(p.errors).toHaveLength(20);
    expect(p.detail).toMatch(/and \d+ more errors not listed/);
    for (const e of p.errors) expect(e.path.length).toBeLessThanOrEqual(100);
  });

  it('echoes at most 200 characters of the path in a 404', async () => {
    const res = await get(t, `/v1/${'a'.repeat(15_000)}`);
    const p = expectProblem(res, 404);
    expect(p.detail.length).toBeLessThan(260);
    expect(res.payload.length).toBeLessThan(1_000);
  });
});
