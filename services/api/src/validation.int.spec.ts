// Refused input: every invalid field named in problem+json, the HTTP-level refusals (413, 415,
// malformed or poisoned JSON), bad query parameters, and the log left untouched each time.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, commitmentInput, createAgreement, errorPaths, expectNothingAppended, expectProblem, get, post, type Json } from './testing/api-fixtures.js';

const NOW = '2026-03-01T09:00:00.000Z';
let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: NOW });
  await createAgreement(t, { id: 'ag-one', commitments: [commitmentInput({ id: 'plant' })] });
});
afterEach(async () => {
  await t.close();
});

const raw = (url: string, payload: string | Buffer, contentType: string) =>
  t.app.inject({ method: 'POST', url, payload, headers: { 'content-type': contentType } });

describe('invalid bodies', () => {
  it('lists every invalid field of an agreement with its path, unknown fields included', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', {
      title: '   ',
      kind: 'treaty',
      sector: 'Health!',
      parties: ['VEN'],
      signedAt: '2025-02-30',
      session: { name: 'CIAN XIX', date: 'yesterday' },
      commitments: [
        commitmentInput(),
        commitmentInput({ dueDate: '30/06/2026', responsible: { party: 've', institution: 'Ministry' } }),
      ],
      foo: 1,
    }));
    const p = expectProblem(res, 400);
    expect(p.code).toBe('invalid_input');
    expect([...new Set(errorPaths(p))].sort()).toEqual([
      'commitments.1.dueDate', 'commitments.1.responsible.party', 'foo', 'kind', 'parties', 'sector', 'session.date', 'signedAt', 'title',
    ].sort());
    for (const e of p.errors) expect(e.message).toEqual(expect.any(String));
    expect(p.errors.find((e: Json) => e.path === 'foo').message).toMatch(/not a known field/);
  });

  it('names the first commitment dueDate as commitments.0.dueDate', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ commitments: [commitmentInput({ dueDate: '2026-13-01' })] })));
    expect(errorPaths(expectProblem(res, 400))).toEqual(['commitments.0.dueDate']);
  });

  it('says which required fields are missing', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', {}));
    const p = expectProblem(res, 400);
    expect(errorPaths(p).sort()).toEqual(['kind', 'parties', 'sector', 'signedAt', 'title']);
    // "kind" is an enum: a missing one must read "is required" like the others, not as a wrong option.
    expect(p.errors.map((e: Json) => `${e.path} ${e.message}`).sort()).toEqual(['kind is required', 'parties is required', 'sector is required', 'signedAt is required', 'title is required']);
  });

  it('names each invalid field once, with the message that fits (not "real date" for a malformed one)', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ signedAt: 'yesterday' })));
    const p = expectProblem(res, 400);
    expect(p.errors).toEqual([{ path: 'signedAt', message: 'must be a date YYYY-MM-DD' }]);
  });

  it.each([
    [{ percent: 101 }, ['percent']],
    [{ percent: 12.5 }, ['percent']],
    [{ percent: '50' }, ['percent']],
    [{}, ['percent']],
    [{ percent: 10, evidenceUrl: 'ftp://files.example/report.pdf' }, ['evidenceUrl']],
    [{ percent: -1, note: '', extra: true }, ['extra', 'note', 'percent']],
  ])('refuses progress %j naming %j', async (body, paths) => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/ag-one/commitments/plant/progress', body));
    expect(errorPaths(expectProblem(res, 400)).sort()).toEqual(paths);
  });

  it('refuses a delay without reason and with an impossible date', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/ag-one/commitments/plant/delay', { newDueDate: '2027-02-29' }));
    expect(errorPaths(expectProblem(res, 400)).sort()).toEqual(['newDueDate', 'reason']);
  });

  it('refuses an id that is not a slug', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ id: 'Not A Slug' })));
    expect(errorPaths(expectProblem(res, 400))).toEqual(['id']);
  });

  it('refuses an occurredAt in the future with 400 naming occurredAt', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/ag-one/commitments/plant/progress', { percent: 10, occurredAt: '2026-03-02T09:00:00Z' }));
    const p = expectProblem(res, 400);
    expect(errorPaths(p)).toEqual(['occurredAt']);
    const create = await expectNothingAppended(t, () => post(t, '/v1/agreements', agreementInput({ occurredAt: '2027-01-01T00:00:00Z' })));
    expect(errorPaths(expectProblem(create, 400))).toEqual(['occurredAt']);
  });

  it('refuses an occurredAt that is not an instant', async () => {
    const res = await expectNothingAppended(t, () => post(t, '/v1/agreements/ag-one/commitments/plant/implementation', { occurredAt: '2026-02-01' }));
    expect(errorPaths(expectProblem(res, 400))).toEqual(['occurredAt']);
  });
});

describe('HTTP-level refusals', () => {
  it('answers 415 for a text/plain body', async () => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements', JSON.stringify(agreementInput()), 'text/plain'));
    expect(expectProblem(res, 415).code).toBe('unsupported_media_type');
  });

  it('answers 415 for a body sent without any content-type', async () => {
    const res = await expectNothingAppended(t, () => t.app.inject({ method: 'POST', url: '/v1/agreements/ag-one/commitments/plant/progress', payload: '{"percent": 10}' }));
    expectProblem(res, 415);
  });

  it('answers 415 for a body of another media type', async () => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements/ag-one/commitments/plant/progress', '<percent>10</percent>', 'application/xml'));
    expectProblem(res, 415);
  });

  it('answers 413 for a JSON body over 1 MiB', async () => {
    const big = JSON.stringify(agreementInput({ summary: 'x'.repeat(1024 * 1024 + 10) }));
    const res = await expectNothingAppended(t, () => raw('/v1/agreements', big, 'application/json'));
    expect(expectProblem(res, 413).code).toBe('body_too_large');
  });

  it('answers 413, not 400, for an oversized body that is not even valid JSON', async () => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements', `{${'x'.repeat(1024 * 1024 + 10)}`, 'application/json'));
    expectProblem(res, 413);
  });

  it.each(['text/plain', 'application/xml'])('answers 413 for an oversized %s body: size is checked before the media type', async (type) => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements', 'x'.repeat(1024 * 1024 + 10), type));
    expectProblem(res, 413);
  });

  it('answers 400 for malformed JSON', async () => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements', '{"title": "Unclosed', 'application/json'));
    const p = expectProblem(res, 400);
    expect(p.code).toBe('invalid_json');
    expect(errorPaths(p)).toEqual(['body']);
  });

  it('answers 400 for an empty JSON body', async () => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements/ag-one/commitments/plant/implementation', '', 'application/json'));
    expectProblem(res, 400);
  });

  it.each([
    ['__proto__ at the top', '{"__proto__": {"isAdmin": true}, "percent": 10}'],
    ['__proto__ nested', '{"percent": 10, "note": "x", "evidenceUrl": "https://a.example", "x": {"__proto__": {"polluted": 1}}}'],
    ['constructor.prototype', '{"percent": 10, "constructor": {"prototype": {"polluted": 1}}}'],
  ])('answers 400 for a body with %s', async (_name, payload) => {
    const res = await expectNothingAppended(t, () => raw('/v1/agreements/ag-one/commitments/plant/progress', payload, 'application/json'));
    expectProblem(res, 400);
    expect(({} as Json).polluted).toBeUndefined();
    expect(({} as Json).isAdmin).toBeUndefined();
  });

  it('answers a method that no route serves without a 5xx', async () => {
    const res = await t.app.inject({ method: 'DELETE', url: '/v1/agreements/ag-one' });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});

describe('invalid query parameters', () => {
  it.each([
    '/v1/agreements?after=abc',
    '/v1/agreements?after=-1',
    '/v1/agreements/ag-one?after=1.5',
    '/v1/commitments?after=%20',
    '/v1/dashboard?after=latest',
    '/v1/agreements/ag-one/commitments/plant?after=x',
  ])('refuses an invalid after: %s', async (url) => {
    expect(errorPaths(expectProblem(await get(t, url), 400))).toEqual(['after']);
  });

  it.each(['0', '501', 'abc', '-5', '2.5'])('refuses limit=%s on both lists', async (limit) => {
    expect(errorPaths(expectProblem(await get(t, `/v1/agreements?limit=${limit}`), 400))).toEqual(['limit']);
    expect(errorPaths(expectProblem(await get(t, `/v1/commitments?limit=${limit}`), 400))).toEqual(['limit']);
  });

  it('accepts the limits at the edges, 1 and 500', async () => {
    expect((await get(t, '/v1/agreements?limit=1')).statusCode).toBe(200);
    expect((await get(t, '/v1/agreements?limit=500')).statusCode).toBe(200);
  });

  it.each(['yesterday', '2026-02-30T00:00:00Z', '2026-03-01', '2026-03-01T09:00:00'])('refuses asOf=%s', async (asOf) => {
    const p = expectProblem(await get(t, `/v1/agreements/ag-one?asOf=${encodeURIComponent(asOf)}`), 400);
    expect(new Set(errorPaths(p))).toEqual(new Set(['asOf']));
  });

  it.each(['not-a-cursor', Buffer.from('["only-one"]').toString('base64url'), Buffer.from('{"a":1}').toString('base64url')])('refuses cursor %s', async (cursor) => {
    expect(errorPaths(expectProblem(await get(t, `/v1/agreements?cursor=${cursor}`), 400))).toEqual(['cursor']);
    expect(errorPaths(expectProblem(await get(t, `/v1/commitments?cursor=${cursor}`), 400))).toEqual(['cursor']);
  });

  it('refuses filters outside their vocabulary', async () => {
    expect(errorPaths(expectProblem(await get(t, '/v1/agreements?status=finished'), 400))).toEqual(['status']);
    expect(errorPaths(expectProblem(await get(t, '/v1/agreements?party=ven'), 400))).toEqual(['party']);
    expect(errorPaths(expectProblem(await get(t, '/v1/commitments?overdue=yes'), 400))).toEqual(['overdue']);
    expect(errorPaths(expectProblem(await get(t, '/v1/commitments?dueBefore=2026-02-30'), 400))).toEqual(['dueBefore']);
  });

  it('refuses bad history paging', async () => {
    expect(errorPaths(expectProblem(await get(t, '/v1/agreements/ag-one/history?fromRevision=-1'), 400))).toEqual(['fromRevision']);
    expect(errorPaths(expectProblem(await get(t, '/v1/agreements/ag-one/history?limit=0'), 400))).toEqual(['limit']);
    expect(errorPaths(expectProblem(await get(t, '/v1/agreements/ag-one/history?limit=1001'), 400))).toEqual(['limit']);
  });

  it('refuses a path id that is not a slug with 400 naming it', async () => {
    expect(errorPaths(expectProblem(await get(t, '/v1/agreements/NOT_A_SLUG'), 400))).toEqual(['id']);
  });
});
