// The OpenAPI document as ministry tools consume it: clean under the recommended lint rules,
// every operation named and its refusals documented as the problem+json the service really
// sends, a server to call, and TypeScript types generated from it that type-check.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import openapiTS, { astToString } from 'openapi-typescript';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';
import { agreementInput, commitmentInput, expectProblem, type Json } from './testing/api-fixtures.js';

const ADMIN: TestKey = { name: 'ministry-tool', role: 'admin', secret: 'admin-secret-0001' };
const VIEWER: TestKey = { name: 'observer', role: 'viewer', secret: 'viewer-secret-0001' };

let t: TestApp;
let source: string;
let doc: Json;
beforeAll(async () => {
  t = await createTestApp({ keys: [ADMIN, VIEWER] });
  const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(res.statusCode).toBe(200);
  source = res.body;
  doc = JSON.parse(source) as Json;
});
afterAll(async () => {
  await t.close();
});

const operations = () => Object.entries(doc.paths as Record<string, Record<string, Json>>)
  .flatMap(([path, methods]) => Object.entries(methods).map(([method, operation]) => ({ path, method, operation })));

describe('lint', () => {
  it('has no error and no warning under the recommended rules', async () => {
    const config = await createConfig({
      extends: ['recommended'],
      rules: {
        // The project has no licence to name yet; choosing one is its owners' decision, not the document's.
        'info-license': 'off',
      },
    });
    const problems = await lintFromString({ source, absoluteRef: 'openapi.json', config });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)).toEqual([]);
  });
});

describe('operations', () => {
  it('each has a stable camelCase operationId, unique in the document', () => {
    const ids = operations().map((o) => o.operation.operationId as string);
    for (const id of ids) expect(id).toMatch(/^[a-z][a-zA-Z]+$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Generated clients name their methods after these: renaming one breaks every client.
    expect([...ids].sort()).toEqual([
      'addCommitment', 'addLogCosignature', 'addMilestone', 'applyProvisionally', 'cancelCommitment', 'cancelReview', 'confirmReviewCancellation',
      'confirmReviewOutcome', 'correctEvent', 'createAgreement', 'createWebhook', 'delayCommitment', 'deleteWebhook', 'expireAgreement',
      'explainCommitment', 'exportAgreement', 'exportReview', 'getAgreement', 'getAgreementHistory', 'getCommitment', 'getConsistencyProof',
      'getDashboard', 'getHealth', 'getImportTemplate', 'getInclusionProof', 'getLogCheckpoint', 'getLogKey', 'getMe', 'getMetrics', 'getReadiness',
      'getReview', 'getReviewCalendar', 'getReviewHistory', 'implementCommitment', 'importSheet', 'listAgreements', 'listCommitments', 'listEvents',
      'listReviews', 'listWebhooks', 'notifyRatification', 'pauseWebhook', 'recordEntryIntoForce', 'recordMilestoneStatus', 'recordProgress',
      'recordReviewOutcome', 'rescheduleReview', 'resumeAgreement', 'resumeWebhook', 'scheduleReview', 'suspendAgreement', 'terminateAgreement',
      'verifyAgreementIntegrity', 'verifyReviewIntegrity', 'withdrawDenunciation',
    ]);
  });

  it('each documents its refusals as problem+json of the one Problem schema', () => {
    expect(doc.components.schemas.Problem.required).toEqual(['type', 'title', 'status', 'detail', 'code']);
    expect(Object.keys(doc.components.schemas.Problem.properties)).toEqual(expect.arrayContaining(['errors']));
    for (const { path, method, operation } of operations()) {
      const refusals = Object.entries(operation.responses as Record<string, Json>).filter(([status]) => Number(status) >= 400);
      expect(refusals.length, `${method} ${path}`).toBeGreaterThan(0);
      for (const [status, response] of refusals) {
        const schema = response.content['application/problem+json'].schema;
        expect(schema.allOf[0], `${method} ${path} ${status}`).toEqual({ $ref: '#/components/schemas/Problem' });
        expect(schema.allOf[1].properties.code.enum.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
      }
    }
  });
});

/** The codes the document says `operationId` can answer with under `status`. */
function documentedCodes(operationId: string, status: number): string[] {
  const found = operations().find((o) => o.operation.operationId === operationId);
  expect(found, operationId).toBeDefined();
  const response = found!.operation.responses[String(status)];
  expect(response, `${operationId} documents ${status}`).toBeDefined();
  return response.content['application/problem+json'].schema.allOf[1].properties.code.enum;
}

describe('refusals the service really sends', () => {
  const admin = bearer(ADMIN);
  const send = (method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = admin) =>
    t.app.inject({ method, url, headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, ...(body === undefined ? {} : { payload: body as object }) });

  it('carry a status and a code the operation documents', async () => {
    const base = '/v1/agreements/doc-check';
    expect((await send('POST', '/v1/agreements', agreementInput({ id: 'doc-check', commitments: [commitmentInput({ id: 'plant' })] }))).statusCode).toBe(201);
    expect((await send('POST', `${base}/commitments/plant/cancellation`, { reason: 'funding withdrawn' })).statusCode).toBe(200);
    expect((await send('POST', '/v1/agreements', agreementInput({ id: 'reused' }), { ...admin, 'idempotency-key': 'k-1' })).statusCode).toBe(201);

    const cases: [operationId: string, status: number, answer: Promise<{ statusCode: number; body: string; headers: Json }>][] = [
      ['listAgreements', 401, send('GET', '/v1/agreements', undefined, {})],
      ['createAgreement', 403, send('POST', '/v1/agreements', agreementInput(), bearer(VIEWER))],
      ['createAgreement', 400, send('POST', '/v1/agreements', { title: 'no parties' })],
      ['createAgreement', 409, send('POST', '/v1/agreements', agreementInput({ id: 'doc-check' }))],
      ['createAgreement', 422, send('POST', '/v1/agreements', agreementInput({ id: 'other' }), { ...admin, 'idempotency-key': 'k-1' })],
      ['createAgreement', 415, t.app.inject({ method: 'POST', url: '/v1/agreements', payload: 'title=x', headers: { ...admin, 'content-type': 'text/plain' } })],
      ['getAgreement', 404, send('GET', '/v1/agreements/never-signed')],
      ['getAgreement', 400, send('GET', `${base}?asOf=2026-01-01T00:00:00Z&revision=0`)],
      ['terminateAgreement', 412, send('POST', `${base}/termination`, { reason: 'superseded' }, { ...admin, 'if-match': '"0"' })],
      ['recordProgress', 409, send('POST', `${base}/commitments/plant/progress`, { percent: 10 })],
      ['recordProgress', 404, send('POST', `${base}/commitments/bridge/progress`, { percent: 10 })],
      ['cancelReview', 404, send('POST', '/v1/reviews/never-scheduled/cancellation', { reason: 'none' })],
      ['getAgreementHistory', 404, send('GET', '/v1/agreements/never-signed/history')],
    ];
    for (const [operationId, status, answer] of cases) {
      const problem = expectProblem((await answer) as never, status);
      expect(documentedCodes(operationId, status), `${operationId} ${status}`).toContain(problem.code);
    }
  });
});

describe('servers', () => {
  it('names PUBLIC_URL when it is set, and "/" otherwise', async () => {
    expect(doc.servers).toEqual([{ url: '/' }]);
    const behindProxy = await createTestApp({ publicUrl: 'https://monitor.example.gov/cm/' });
    try {
      const served = (await behindProxy.app.inject({ method: 'GET', url: '/openapi.json' })).json<Json>();
      expect(served.servers).toEqual([{ url: 'https://monitor.example.gov/cm' }]);
      // The paths stay as the service routes them; the server carries the prefix.
      expect(Object.keys(served.paths)).toContain('/v1/agreements');
    } finally {
      await behindProxy.close();
    }
  });
});

// A body for every command, as a client generated from the document would write it. Typed
// through the generated `paths`, so a body the document does not describe fails to compile.
const COMMAND_BODIES: Record<string, string> = {
  '/v1/agreements': `{ title: 'Health cooperation', kind: 'agreement', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28', entryIntoForce: 'on_last_ratification',
    commitments: [{ title: 'Open a plant', dueDate: '2027-06-30', responsible: { party: 'VEN', institution: 'Ministry of Health' } },
      { title: 'Train staff', dueDate: { relativeTo: 'entry_into_force', days: 90 }, responsible: { party: 'VEN', institution: 'Ministry of Health' } }] }`,
  '/v1/agreements/{id}/termination': `{ reason: 'superseded' }`,
  '/v1/agreements/{id}/denunciation/withdrawal': `{ reason: 'talks resumed' }`,
  '/v1/agreements/{id}/commitments': `{ title: 'Train staff', dueDate: '2027-01-31', responsible: { party: 'RUS', institution: 'Ministry of Health' } }`,
  '/v1/agreements/{id}/commitments/{cid}/milestones': `{ id: 'site-chosen', title: 'Site chosen', dueDate: '2027-01-31', weight: 30 }`,
  '/v1/agreements/{id}/commitments/{cid}/milestones/{mid}/status': `{ status: 'partially_met', note: 'two of three sites', evidenceUrl: 'https://example.org/sites' }`,
  '/v1/agreements/{id}/ratifications': `{ party: 'RUS', date: '2026-02-10' }`,
  '/v1/agreements/{id}/entry-into-force': `{ date: '2026-03-01', reason: 'the note arrived later' }`,
  '/v1/agreements/{id}/provisional-application': `{ date: '2026-01-20' }`,
  '/v1/agreements/{id}/suspension': `{ date: '2026-02-01', reason: 'force majeure' }`,
  '/v1/agreements/{id}/resumption': `{ date: '2026-02-20' }`,
  '/v1/agreements/{id}/expiry': `{ date: '2031-01-15', reason: 'its term ran out' }`,
  '/v1/agreements/{id}/commitments/{cid}/progress': `{ percent: 40, note: 'site chosen', evidenceUrl: 'https://example.org/report' }`,
  '/v1/agreements/{id}/commitments/{cid}/implementation': `{ note: 'opened' }`,
  '/v1/agreements/{id}/commitments/{cid}/delay': `{ reason: 'permits', newDueDate: '2027-12-31' }`,
  '/v1/agreements/{id}/commitments/{cid}/cancellation': `{ reason: 'funding withdrawn' }`,
  '/v1/agreements/{id}/corrections': `{ revision: 2, percent: 30, reason: 'typo in the report' }`,
  '/v1/reviews': `{ title: 'Quarterly review', scheduledFor: '2027-03-01T10:00:00Z', agreementIds: ['health-cooperation'], attendees: [{ email: 'desk@example.gov' }] }`,
  '/v1/reviews/{id}/reschedule': `{ scheduledFor: '2027-03-08T10:00:00Z', reason: 'holiday' }`,
  '/v1/reviews/{id}/cancellation': `{ reason: 'no quorum' }`,
  '/v1/reviews/{id}/cancellation/confirm': `{}`,
  '/v1/reviews/{id}/outcome/confirm': `{}`,
  '/v1/log/cosignatures': `{ size: 7, cosignature: '\u2014 rus-mfa AAAA' }`,
  '/v1/webhooks': `{ url: 'https://tool.example.gov/hooks', types: ['CommitmentDelayed'], parties: ['VEN'] }`,
  '/v1/webhooks/{id}/pause': `{}`,
  '/v1/webhooks/{id}/resume': `{}`,
  '/v1/reviews/{id}/outcome': `{ summary: 'on track', assessments: [{ agreementId: 'health-cooperation', rating: 'on_track' }] }`,
};

const run = promisify(execFile);

describe('generated TypeScript types', () => {
  it('type-check a request body for every command and the problem codes of a refusal', async () => {
    // POST /v1/imports takes a file (text/csv or XLSX), not a JSON body: sheets.int.spec.ts sends real files.
    const commandPaths = operations().filter((o) => o.method === 'post' && o.path !== '/v1/imports').map((o) => o.path);
    // A new command needs a body here, or it would go unchecked.
    expect([...commandPaths].sort()).toEqual(Object.keys(COMMAND_BODIES).sort());

    const generated = astToString(await openapiTS(source, { silent: true }));
    const usage = [
      "import type { components, operations, paths } from './openapi.js';",
      ...Object.entries(COMMAND_BODIES).map(([path, body], i) =>
        `export const body${i}: paths['${path}']['post']['requestBody']['content']['application/json'] = ${body};`),
      // The types are not `any`: a body missing a required field, or a code no refusal carries, does not compile.
      "// @ts-expect-error title is required",
      "export const untitled: paths['/v1/agreements']['post']['requestBody']['content']['application/json'] = { kind: 'agreement', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28' };",
      "type Conflict = operations['terminateAgreement']['responses'][409]['content']['application/problem+json'];",
      "export const conflict: Conflict['code'] = 'agreement_terminated';",
      "// @ts-expect-error not a code of this refusal",
      "export const unknownCode: Conflict['code'] = 'agreement_exists';",
      "export const fields: components['schemas']['Problem']['errors'] = [{ path: 'title', message: 'is required' }];",
    ].join('\n');

    const dir = mkdtempSync(join(tmpdir(), 'cm-openapi-ts-'));
    try {
      writeFileSync(join(dir, 'openapi.d.ts'), generated);
      writeFileSync(join(dir, 'usage.ts'), usage);
      const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
      const args = ['--noEmit', '--strict', '--exactOptionalPropertyTypes', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', join(dir, 'usage.ts')];
      const result = await run(process.execPath, [tsc, ...args]).then(() => ({ code: 0, out: '' }), (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }));
      expect(result.out).toBe('');
      expect(result.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
