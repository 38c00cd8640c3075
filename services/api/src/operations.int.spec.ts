// What an orchestrator and an operator look at: liveness, readiness, metrics, the OpenAPI
// document and its viewer, and read-your-writes timing out with 503.
import { afterEach, describe, expect, it } from 'vitest';
import { verifyChain } from '@cm/event-store';
import { injectWriterFault, restartGate, writerLog } from '@cm/event-store/testing';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, createAgreement, expectProblem, get, post, type Json } from './testing/api-fixtures.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  while (open.length) await open.pop()!.close();
});
async function app(options: Parameters<typeof createTestApp>[0] = {}): Promise<TestApp> {
  const t = await createTestApp(options);
  open.push(t);
  return t;
}
async function stalled(): Promise<TestApp> {
  const s = await createTestApp({ stalled: true, readWaitMs: 150 });
  open.push(s);
  return s;
}
const signed = (id: string) => ({
  id: crypto.randomUUID(), type: 'AgreementSigned',
  data: { agreementId: id, title: 'Appended behind the projection', kind: 'agreement', sector: 'health', parties: ['VEN', 'RUS'], signedAt: '2025-11-28' },
  metadata: { actor: 'test', occurredAt: '2025-11-28T00:00:00.000Z', correlationId: 'c' },
});

describe('GET /health', () => {
  it('answers 200 while the process lives, with a request id', async () => {
    const t = await app();
    const res = await get(t, '/health');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
    expect(res.headers['x-request-id']).toEqual(expect.any(String));
  });
});

describe('GET /ready', () => {
  it('answers 200 with projection lag 0 once the projection has caught up with the log', async () => {
    const t = await app();
    const created = await createAgreement(t, { id: 'ready-check' });
    const res = await get(t, '/ready');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Json>();
    expect(body.status).toBe('ready');
    expect(body.projections).toEqual([{ name: 'ledger', checkpoint: created.position, head: created.position, lag: 0 }]);
  });

  it('answers 200 on an empty log', async () => {
    const t = await app();
    const res = await get(t, '/ready');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<Json>().projections[0].lag).toBe(0);
  });

  it('answers 503 problem+json with the reason and Retry-After while the projection is behind', async () => {
    const s = await stalled();
    await s.eventStore.append('agreement-behind', [signed('behind')], { expectedRevision: 'no_stream' });
    const res = await s.app.inject({ method: 'GET', url: '/ready' });
    const p = expectProblem(res, 503);
    expect(p.code).toBe('projections_behind');
    expect(res.headers['retry-after']).toBeDefined();
    expect(p.projections[0]).toMatchObject({ name: 'ledger', lag: 1 });
  });
});

describe('the log writer thread stopping', () => {
  /** Every stream of the log verifies, and each agreement id was signed once. */
  async function expectLogIntact(t: TestApp, ids: string[]): Promise<void> {
    for (const stream of await t.eventStore.listStreams()) {
      expect(verifyChain(await t.eventStore.readStream(stream))).toMatchObject({ valid: true, firstInvalidRevision: null });
    }
    const signedIds = (await t.eventStore.readAll({ after: null, limit: 1000 }))
      .filter((e) => e.type === 'AgreementSigned')
      .map((e) => (e.data as { agreementId: string }).agreementId);
    expect(signedIds).toEqual(ids);
  }

  it('/ready answers 503 naming the writer while it is down and 200 once it is back; commands are refused as retryable meanwhile', async () => {
    const log = writerLog();
    const gate = restartGate();
    const t = await app({ writer: { logger: log.logger, beforeRestart: gate.beforeRestart } });
    await createAgreement(t, { id: 'before-crash' });

    injectWriterFault(t.eventStore, 'crash');
    await gate.reached;
    const down = await get(t, '/ready');
    expect(expectProblem(down, 503)).toMatchObject({ code: 'writer_unavailable', detail: expect.stringMatching(/writer thread is not running/) });
    expect(down.headers['retry-after']).toBeDefined();
    const refused = await post(t, '/v1/agreements', agreementInput({ id: 'while-down' }));
    expect(expectProblem(refused, 503)).toMatchObject({ code: 'log_unavailable', retry: expect.stringMatching(/nothing was written/) });
    expect(refused.headers['retry-after']).toBeDefined();

    const back = log.restarted();
    gate.release();
    await back;
    const up = await get(t, '/ready');
    expect(up.statusCode, up.body).toBe(200);
    await createAgreement(t, { id: 'while-down' });
    await createAgreement(t, { id: 'after-restart' });
    expect(log.lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^sqlite writer thread stopped: .*; restarting$/), 'sqlite writer thread restarted']);
    await expectLogIntact(t, ['before-crash', 'while-down', 'after-restart']);
  });

  it('a command whose append was committed as the thread stopped answers 503 with a retry hint; its retry under the same Idempotency-Key answers what was written, once', async () => {
    const log = writerLog();
    const t = await app({ writer: { logger: log.logger } });
    await createAgreement(t, { id: 'before-crash' });
    const key = { 'idempotency-key': 'lost-answer' };
    const back = log.restarted();
    injectWriterFault(t.eventStore, 'exit-after-commit');
    const lost = await post(t, '/v1/agreements', agreementInput({ id: 'committed-unanswered' }), key);
    const p = expectProblem(lost, 503);
    expect(p).toMatchObject({ code: 'log_unavailable', detail: expect.stringMatching(/written whole or not at all/), retry: expect.stringMatching(/same Idempotency-Key/) });
    expect(p.detail).not.toMatch(/fail/);
    await back;
    const retried = await post(t, '/v1/agreements', agreementInput({ id: 'committed-unanswered' }), key);
    expect(retried.statusCode, retried.body).toBe(201);
    expect(retried.json<Json>()).toMatchObject({ id: 'committed-unanswered', revision: 0 });
    await expectLogIntact(t, ['before-crash', 'committed-unanswered']);
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with the projection lag and request counters', async () => {
    const t = await app();
    await createAgreement(t, { id: 'metrics-check' });
    expectProblem(await get(t, '/v1/agreements/missing-one'), 404);
    await get(t, '/health');
    const res = await get(t, '/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body;
    expect(text).toContain('# TYPE cm_projection_lag_events gauge');
    expect(text).toMatch(/^cm_projection_lag_events\{projection="ledger"\} 0$/m);
    expect(text).toMatch(/^cm_log_head_position 1$/m);
    expect(text).toMatch(/^cm_http_requests_total\{method="GET",route="\/health",status="200"\} 1$/m);
    // The counter must see the API's own routes, not only the operations plugin's.
    expect(text).toMatch(/^cm_http_requests_total\{method="POST",route="\/v1\/agreements",status="201"\} 1$/m);
    expect(text).toMatch(/^cm_http_requests_total\{method="GET",route="\/v1\/agreements\/:id",status="404"\} 1$/m);
    // Every sample line is `name{labels} value`.
    for (const line of text.trim().split('\n').filter((l) => !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?\d+(\.\d+)?$/);
    }
  });

  it('shows the lag when the projection is behind', async () => {
    const s = await stalled();
    await s.eventStore.append('agreement-behind', [signed('behind')], { expectedRevision: 'no_stream' });
    await s.eventStore.append('agreement-behind-2', [signed('behind-2')], { expectedRevision: 'no_stream' });
    const res = await s.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.body).toMatch(/^cm_projection_lag_events\{projection="ledger"\} 2$/m);
  });
});

describe('read-your-writes timing out', () => {
  it('answers 503 with Retry-After when the read models do not reach the position in time', async () => {
    const s = await stalled();
    const res = await s.app.inject({ method: 'POST', url: '/v1/agreements', payload: agreementInput({ id: 'never-projected' }) });
    expect(res.statusCode).toBe(201);
    const started = Date.now();
    const read = await s.app.inject({ method: 'GET', url: `/v1/agreements/never-projected?after=${res.json<Json>().position}` });
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(expectProblem(read, 503).code).toBe('not_yet_visible');
    expect(read.headers['retry-after']).toBeDefined();
  });

  it('answers for a position just appended, and at once for one already applied', async () => {
    const t = await app();
    const created = (await post(t, '/v1/agreements', agreementInput({ id: 'just-written' }))).json<Json>();
    const res = await get(t, `/v1/agreements/just-written?after=${created.position}`);
    expect(res.statusCode).toBe(200);
    expect(res.json<Json>().revision).toBe(0);
    const older = await get(t, '/v1/agreements?after=1');
    expect(older.statusCode).toBe(200);
    expect(older.json<Json>().total).toBe(1);
  });
});

describe('GET /openapi.json and /docs', () => {
  it('serves an OpenAPI 3.1 document describing the agreement routes', async () => {
    const t = await app();
    const res = await get(t, '/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json<Json>();
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toEqual(expect.any(String));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/agreements', '/v1/agreements/{id}', '/v1/commitments', '/v1/dashboard']));
    expect(doc.paths['/v1/agreements']).toHaveProperty('get');
    expect(doc.paths['/v1/agreements']).toHaveProperty('post');
    const body = doc.paths['/v1/agreements'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['title', 'kind', 'sector', 'parties', 'signedAt']));
  });

  it('serves the docs viewer', async () => {
    const t = await app();
    const res = await get(t, '/docs');
    if (res.statusCode >= 300 && res.statusCode < 400) {
      expect(res.headers.location).toEqual(expect.any(String));
    } else {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/text\/html/);
    }
  });
});
