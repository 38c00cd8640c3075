// The REST contract (shared/API.md) over real HTTP against the real process: create,
// read-your-writes with `?after=`, ETag / If-Match, problem+json errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, type Client } from './support/http.js';
import { killAllServices, removeDataDir, startService, type ServiceProcess } from './support/service-process.js';

let service: ServiceProcess;
let api: Client;

beforeAll(async () => {
  service = await startService();
  api = client(service.url);
}, 30_000);

afterAll(async () => {
  await killAllServices();
  if (service) removeDataDir(service.dataDir);
});

const agreement = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  title: `Health cooperation ${id}`,
  kind: 'agreement',
  sector: 'health',
  parties: ['VEN', 'RUS'],
  signedAt: '2025-11-28',
  session: { name: 'CIAN XIX', date: '2025-11-28' },
  commitments: [
    { id: 'vaccine-plant', title: 'Vaccine plant feasibility study', dueDate: '2099-06-30', responsible: { party: 'VEN', institution: 'Ministry of Health' } },
    { id: 'training', title: 'Train 200 specialists', dueDate: '2099-12-31', responsible: { party: 'RUS', institution: 'Ministry of Health' } },
  ],
  ...extra,
});

function expectProblem(reply: { status: number; contentType: string; body: any }, status: number, code?: string) {
  expect(reply.status).toBe(status);
  expect(reply.contentType).toMatch(/^application\/problem\+json/);
  expect(reply.body).toMatchObject({ status, type: expect.any(String), title: expect.any(String), detail: expect.any(String), code: expect.any(String) });
  if (code) expect(reply.body.code).toBe(code);
}

describe('the HTTP contract over a real socket', () => {
  it('creates an agreement: 201, Location, ETag, revision and position', async () => {
    const created = await api.post('/v1/agreements', agreement('contract-create'));
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe('/v1/agreements/contract-create');
    // The stream's first event is revision 0; two commitments follow it.
    expect(created.body).toMatchObject({ id: 'contract-create', status: 'signed', revision: 2, position: expect.stringMatching(/^\d+$/) });
    expect(created.headers.get('etag')).toBe('"2"');
    expect(created.body.commitments.map((c: { id: string }) => c.id)).toEqual(['vaccine-plant', 'training']);
  });

  it('reads its own writes at once with ?after=<position>', async () => {
    const created = await api.post('/v1/agreements', agreement('contract-ryw'));
    expect(created.status).toBe(201);
    const after = created.body.position as string;

    const detail = await api.get(`/v1/agreements/contract-ryw?after=${after}`);
    expect(detail.status).toBe(200);
    const { position: _position, ...resource } = created.body;
    expect(detail.body).toEqual(resource);

    const list = await api.get(`/v1/agreements?q=contract-ryw&after=${after}`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((a: { id: string }) => a.id)).toEqual(['contract-ryw']);

    // Every update, read back straight away, shows itself, not an earlier state.
    for (const percent of [10, 35, 20, 80]) {
      const reported = await api.post('/v1/agreements/contract-ryw/commitments/training/progress', { percent });
      expect(reported.status).toBe(200);
      const read = await api.get(`/v1/agreements/contract-ryw/commitments/training?after=${reported.body.position}`);
      expect(read.status).toBe(200);
      expect(read.body).toMatchObject({ progress: percent, status: 'in_progress', revision: reported.body.revision });
      const commitments = await api.get(`/v1/commitments?agreementId=contract-ryw&after=${reported.body.position}`);
      expect(commitments.body.items.find((c: { id: string }) => c.id === 'training').progress).toBe(percent);
    }
  });

  it('answers 503 with Retry-After when ?after= is a position the read models never reach', async () => {
    const reply = await api.get('/v1/agreements?after=999999999');
    expectProblem(reply, 503);
    expect(reply.headers.get('retry-after')).toMatch(/^\d+$/);
  }, 15_000);

  it('sets ETag on reads and refuses a stale If-Match with 412, appending nothing', async () => {
    const created = await api.post('/v1/agreements', agreement('contract-etag'));
    const read = await api.get(`/v1/agreements/contract-etag?after=${created.body.position}`);
    expect(read.headers.get('etag')).toBe('"2"');

    const fresh = await api.post('/v1/agreements/contract-etag/commitments/vaccine-plant/progress', { percent: 40 }, { 'if-match': '"2"' });
    expect(fresh.status).toBe(200);
    expect(fresh.body).toMatchObject({ revision: 3, progress: 40 });
    expect(fresh.headers.get('etag')).toBe('"3"');

    const stale = await api.post('/v1/agreements/contract-etag/commitments/vaccine-plant/progress', { percent: 90 }, { 'if-match': '"2"' });
    expectProblem(stale, 412, 'stale_revision');

    const history = await api.get('/v1/agreements/contract-etag/history');
    expect(history.body.revision).toBe(3);
    expect(history.body.events).toHaveLength(4);
    const after = await api.get(`/v1/agreements/contract-etag?after=${fresh.body.position}`);
    expect(after.headers.get('etag')).toBe('"3"');
    expect(after.body.commitments.find((c: { id: string }) => c.id === 'vaccine-plant').progress).toBe(40);
  });

  it('answers 400 problem+json listing every invalid field, and appends nothing', async () => {
    const before = await api.get('/v1/agreements?limit=500');
    const reply = await api.post('/v1/agreements', {
      id: 'contract-invalid',
      kind: 'treaty',
      sector: 'health',
      parties: ['VEN'],
      signedAt: '2025-02-30',
    });
    expectProblem(reply, 400);
    const paths = (reply.body.errors as { path: string; message: string }[]).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['title', 'kind', 'parties', 'signedAt']));
    for (const e of reply.body.errors) expect(e.message).toEqual(expect.any(String));

    expect((await api.get('/v1/agreements/contract-invalid')).status).toBe(404);
    const after = await api.get('/v1/agreements?limit=500');
    expect(after.body.total).toBe(before.body.total);
  });

  it('answers 404 problem+json for an unknown route and an unknown agreement', async () => {
    expectProblem(await api.get('/v1/no-such-thing'), 404, 'route_not_found');
    expectProblem(await api.post('/v2/agreements', {}), 404, 'route_not_found');
    expectProblem(await api.get('/v1/agreements/never-signed-agreement'), 404, 'agreement_not_found');
    expectProblem(await api.get('/v1/agreements/never-signed-agreement/history'), 404);
  });

  it('answers 409 problem+json for an id that exists', async () => {
    expect((await api.post('/v1/agreements', agreement('contract-dup'))).status).toBe(201);
    expectProblem(await api.post('/v1/agreements', agreement('contract-dup')), 409, 'agreement_exists');
  });

  it.each(['application/x-www-form-urlencoded', 'text/plain'])('answers 415 problem+json for a body sent as %s (not JSON)', async (type) => {
    const body = type === 'text/plain' ? JSON.stringify(agreement('contract-not-json')) : 'title=x';
    expectProblem(await api.raw('/v1/agreements', { method: 'POST', headers: { 'content-type': type }, body }), 415, 'unsupported_media_type');
    expect((await api.get('/v1/agreements/contract-not-json')).status).toBe(404);
  });
});
