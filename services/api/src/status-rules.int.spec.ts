// Status rules through HTTP: what an agreement's status says when its commitments change.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { command, commitmentInput, createAgreement, get, type Json } from './testing/api-fixtures.js';

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: '2026-02-01T09:00:00.000Z' });
});
afterEach(async () => {
  await t.close();
});

const base = '/v1/agreements/ag-health';
const agreement = async () => (await get(t, base)).json<Json>();

async function seed(): Promise<void> {
  await createAgreement(t, {
    id: 'ag-health',
    occurredAt: '2025-11-28T15:00:00Z',
    commitments: [
      commitmentInput({ id: 'ven', dueDate: '2026-02-15', responsible: { party: 'VEN', institution: 'Ministry of Health' } }),
      commitmentInput({ id: 'rus', dueDate: '2026-02-15', responsible: { party: 'RUS', institution: 'Ministry of Health' } }),
    ],
  });
}

describe('an agreement whose commitments were all cancelled', () => {
  it('is cancelled, not signed, and says why', async () => {
    await seed();
    await command(t, `${base}/commitments/ven/cancellation`, { reason: 'Dropped by both parties' });
    expect((await agreement()).status).toBe('signed');
    await command(t, `${base}/commitments/rus/cancellation`, { reason: 'Dropped by both parties' });
    const a = await agreement();
    expect(a.status).toBe('cancelled');
    expect(a.statusReason).toMatch(/^cancelled: every commitment was cancelled \(2\)/);
    const listed = (await get(t, '/v1/agreements?status=cancelled')).json<Json>();
    expect(listed.items.map((x: Json) => x.id)).toEqual(['ag-health']);
    expect((await get(t, '/v1/agreements?status=signed')).json<Json>().items).toEqual([]);
  });
});
