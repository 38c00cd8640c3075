// What cannot have happened is refused over HTTP: a party that is no assigned ISO 3166-1
// alpha-3 code, a signing in the future, a due date before the signing, and events dated before
// the agreement was signed or before their commitment was added. Each 400 names the field and
// nothing is appended.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, command, commitmentInput, createAgreement, errorPaths, expectNothingAppended, expectProblem, post } from './testing/api-fixtures.js';

const NOW = '2026-03-01T09:00:00.000Z';
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: NOW });
  await createAgreement(t, { id: 'ag-one', signedAt: '2025-11-28', occurredAt: '2025-11-28T15:00:00Z', commitments: [commitmentInput({ id: 'plant' })] });
});
afterEach(async () => {
  await t.close();
});

async function refused(url: string, body: unknown, paths: string[]) {
  const res = await expectNothingAppended(t, () => post(t, url, body));
  const p = expectProblem(res, 400);
  expect(errorPaths(p)).toEqual(paths);
  return p;
}

describe('dating and codes', () => {
  it('refuses a party code that is not assigned (ZZZ), naming it; XKX is accepted', async () => {
    await refused('/v1/agreements', agreementInput({ parties: ['VEN', 'ZZZ'] }), ['parties.1']);
    await refused('/v1/agreements', agreementInput({ commitments: [commitmentInput({ responsible: { party: 'AAA', institution: 'X' } })] }), ['commitments.0.responsible.party']);
    const res = await post(t, '/v1/agreements', agreementInput({ id: 'with-kosovo', parties: ['VEN', 'XKX'] }));
    expect(res.statusCode).toBe(201);
  });

  it('refuses a signing date in the future by the service clock', async () => {
    await refused('/v1/agreements', agreementInput({ signedAt: '2026-03-05' }), ['signedAt']);
  });

  it('refuses a due date before the signing date', async () => {
    await refused('/v1/agreements', agreementInput({ signedAt: '2025-11-28', commitments: [commitmentInput({ dueDate: '2025-10-01' })] }), ['commitments.0.dueDate']);
    await refused('/v1/agreements/ag-one/commitments', commitmentInput({ id: 'early', dueDate: '2025-01-01' }), ['dueDate']);
  });

  it('refuses an event dated before the agreement was signed, 1901 included', async () => {
    const p = await refused('/v1/agreements/ag-one/commitments/plant/implementation', { occurredAt: '1901-01-01T00:00:00Z' }, ['occurredAt']);
    expect(p.detail).toContain('before');
    await refused('/v1/agreements/ag-one/commitments', commitmentInput({ id: 'later', occurredAt: '2025-06-01T00:00:00Z' }), ['occurredAt']);
    await refused('/v1/agreements/ag-one/termination', { reason: 'denounced', occurredAt: '2025-01-01T00:00:00Z' }, ['occurredAt']);
  });

  it('refuses a delay, progress or implementation dated before its commitment was added', async () => {
    await command(t, '/v1/agreements/ag-one/commitments', commitmentInput({ id: 'added-later', occurredAt: '2026-02-01T00:00:00Z' }), 201);
    for (const [path, body] of [
      ['delay', { reason: 'customs', newDueDate: '2026-12-31', occurredAt: '2026-01-15T00:00:00Z' }],
      ['progress', { percent: 40, occurredAt: '2026-01-15T00:00:00Z' }],
      ['implementation', { occurredAt: '2026-01-31T23:59:59Z' }],
    ] as const) {
      const p = await refused(`/v1/agreements/ag-one/commitments/added-later/${path}`, body, ['occurredAt']);
      expect(p.detail).toContain('before commitment added-later was added');
    }
    await command(t, '/v1/agreements/ag-one/commitments/added-later/progress', { percent: 40, occurredAt: '2026-02-01T00:00:00Z' });
  });

  it('refuses a review outcome held before an agreement in its scope was signed, naming heldAt', async () => {
    await command(t, '/v1/reviews', { id: 'rev-one', title: 'Review', scheduledFor: '2026-04-01T09:00:00Z', agreementIds: ['ag-one'], attendees: [{ email: 'a@example.org' }] }, 201);
    const p = await refused('/v1/reviews/rev-one/outcome', { heldAt: '1901-01-01T00:00:00Z', assessments: [{ agreementId: 'ag-one', rating: 'on_track' }] }, ['heldAt']);
    expect(p.detail).toContain('signed');
  });
});
