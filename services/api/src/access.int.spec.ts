// Access control through the real app: API keys, roles, an editor's parties, rate limits per
// key (in memory and on the real Redis), security headers and CORS. Every refusal appends nothing.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agreementInput, commitmentInput, expectNothingAppended, expectProblem, get, post, sleep, type Json } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const admin: TestKey = { name: 'ops-admin', role: 'admin', secret: 'cm_admin_secret_0001' };
const venEditor: TestKey = { name: 'mfa-ven', role: 'editor', parties: ['VEN'], secret: 'cm_ven_editor_0001' };
const rusEditor: TestKey = { name: 'mid-rus', role: 'editor', parties: ['RUS'], secret: 'cm_rus_editor_0001' };
const viewer: TestKey = { name: 'press-office', role: 'viewer', secret: 'cm_viewer_0001' };
const auditor: TestKey = { name: 'court-of-audit', role: 'auditor', secret: 'cm_auditor_0001' };
const keys = [admin, venEditor, rusEditor, viewer, auditor];

const venRusAgreement = agreementInput({
  id: 'energy-2025',
  sector: 'energy',
  commitments: [
    commitmentInput({ id: 'ven-grid', responsible: { party: 'VEN', institution: 'Ministry of Electric Energy' } }),
  ],
});

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ keys });
  // The VEN side records the agreement and its commitment; the RUS side adds its own.
  const signed = await post(t, '/v1/agreements', venRusAgreement, bearer(venEditor));
  expect(signed.statusCode, signed.body).toBe(201);
  const added = await post(t, '/v1/agreements/energy-2025/commitments', commitmentInput({ id: 'rus-turbines', responsible: { party: 'RUS', institution: 'Rosatom' } }), bearer(rusEditor));
  expect(added.statusCode, added.body).toBe(201);
  expect((await get(t, `/v1/dashboard?after=${added.json<Json>().position}`, bearer(admin))).statusCode).toBe(200);
});
afterAll(async () => t.close());

const asAdmin = (url: string) => get(t, url, bearer(admin));

describe('without a valid key', () => {
  it('answers 401 problem+json naming what to send, with WWW-Authenticate', async () => {
    const none = expectProblem(await get(t, '/v1/agreements'), 401);
    expect(none.code).toBe('credentials_required');
    const wrong = await get(t, '/v1/agreements', { authorization: 'Bearer cm_not_a_key_at_all' });
    expect(expectProblem(wrong, 401).code).toBe('invalid_credentials');
    expect(wrong.headers['www-authenticate']).toBe('Bearer realm="commitment-monitor", error="invalid_token"');
    expect(expectProblem(await get(t, '/v1/agreements', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }), 401).code).toBe('invalid_credentials');
  });

  it('accepts the Bearer scheme in any case (RFC 9110: auth schemes are case-insensitive)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const r = await get(t, '/v1/agreements', { authorization: `${scheme} ${viewer.secret}` });
      expect(r.statusCode, `${scheme}: ${r.body}`).toBe(200);
    }
  });

  it('appends nothing, and reads no body, on a command', async () => {
    await expectNothingAppended(t, async () => {
      expectProblem(await post(t, '/v1/agreements/energy-2025/commitments/ven-grid/progress', { percent: 90 }), 401);
      expectProblem(await post(t, '/v1/agreements', { not: 'even valid' }), 401);
    });
  });

  it('still reaches the probes and the documentation', async () => {
    expect((await get(t, '/health')).statusCode).toBe(200);
    expect((await get(t, '/ready')).statusCode).toBe(200);
    expect((await get(t, '/openapi.json')).statusCode).toBe(200);
    const docs = await get(t, '/docs/');
    expect(docs.statusCode).toBe(200);
    expect(docs.body).toContain('swagger');
  });

  it('refuses a declared body over the limit with 413 before asking for a key', async () => {
    const res = await t.app.inject({
      method: 'POST', url: '/v1/agreements', headers: { 'content-type': 'application/json', 'content-length': String(2 * 1024 * 1024) }, payload: 'x'.repeat(2 * 1024 * 1024),
    });
    expectProblem(res, 413);
  });
});

describe('roles', () => {
  it('lets a viewer read but not command nor read the audit trail', async () => {
    expect((await get(t, '/v1/agreements/energy-2025', bearer(viewer))).statusCode).toBe(200);
    expect((await get(t, '/v1/commitments?party=VEN', bearer(viewer))).statusCode).toBe(200);
    expect((await get(t, '/v1/dashboard', bearer(viewer))).statusCode).toBe(200);
    await expectNothingAppended(t, async () => {
      const p = expectProblem(await post(t, '/v1/agreements/energy-2025/commitments/ven-grid/progress', { percent: 50 }, bearer(viewer)), 403);
      expect(p.code).toBe('role_not_allowed');
      expect(p.detail).toContain('needs editor or admin');
    });
    for (const url of ['/v1/agreements/energy-2025/history', '/v1/agreements/energy-2025/integrity', '/v1/agreements/energy-2025/export', '/v1/agreements/energy-2025/commitments/ven-grid/explain']) {
      expect(expectProblem(await get(t, url, bearer(viewer)), 403).detail, url).toContain('needs auditor or admin');
    }
  });

  it('lets an auditor read history, integrity, explain and exports, and command nothing', async () => {
    for (const url of ['/v1/agreements/energy-2025/history', '/v1/agreements/energy-2025/integrity', '/v1/agreements/energy-2025/export', '/v1/agreements/energy-2025/commitments/ven-grid/explain']) {
      expect((await get(t, url, bearer(auditor))).statusCode, url).toBe(200);
    }
    await expectNothingAppended(t, async () => {
      expectProblem(await post(t, '/v1/agreements/energy-2025/termination', { reason: 'audit' }, bearer(auditor)), 403);
    });
  });

  it('records the key\'s name as the actor of every event', async () => {
    const history = (await get(t, '/v1/agreements/energy-2025/history', bearer(auditor))).json<Json>();
    expect(history.events.map((e: Json) => [e.type, e.actor])).toEqual([
      ['AgreementSigned', 'mfa-ven'],
      ['CommitmentAdded', 'mfa-ven'],
      ['CommitmentAdded', 'mid-rus'],
    ]);
  });
});

describe('an editor', () => {
  it('reports progress on the commitments its party is responsible for, and on nothing else', async () => {
    const ok = await post(t, '/v1/agreements/energy-2025/commitments/ven-grid/progress', { percent: 30 }, bearer(venEditor));
    expect(ok.statusCode, ok.body).toBe(200);
    await expectNothingAppended(t, async () => {
      const p = expectProblem(await post(t, '/v1/agreements/energy-2025/commitments/rus-turbines/progress', { percent: 99 }, bearer(venEditor)), 403);
      expect(p.code).toBe('outside_parties');
      expect(p.detail).toContain('rus-turbines, for which RUS is responsible');
      expectProblem(await post(t, '/v1/agreements/energy-2025/commitments/rus-turbines/delay', { reason: 'x', newDueDate: '2028-01-01' }, bearer(venEditor)), 403);
      expectProblem(await post(t, '/v1/agreements/energy-2025/commitments/ven-grid/cancellation', { reason: 'not ours' }, bearer(rusEditor)), 403);
    });
  });

  it('cannot record commitments of the other party, nor agreements between other parties, and is told which field', async () => {
    await expectNothingAppended(t, async () => {
      const both = agreementInput({
        id: 'science-2025',
        commitments: [commitmentInput(), commitmentInput({ title: 'Russian side', responsible: { party: 'RUS', institution: 'Academy of Sciences' } })],
      });
      const p = expectProblem(await post(t, '/v1/agreements', both, bearer(venEditor)), 403);
      expect(p.errors).toEqual([{ path: 'commitments.1.responsible.party', message: 'must be one of VEN' }]);
      const other = expectProblem(await post(t, '/v1/agreements', agreementInput({ id: 'rus-chn', parties: ['RUS', 'CHN'] }), bearer(venEditor)), 403);
      expect(other.errors).toEqual([{ path: 'parties', message: 'must be one of VEN' }]);
      expectProblem(await post(t, '/v1/agreements/energy-2025/commitments', commitmentInput({ responsible: { party: 'RUS', institution: 'Rosatom' } }), bearer(venEditor)), 403);
    });
  });

  it('corrects only events about its own commitments', async () => {
    const history = (await get(t, '/v1/agreements/energy-2025/history', bearer(auditor))).json<Json>();
    const rusAdded = history.events.find((e: Json) => e.type === 'CommitmentAdded' && e.data.commitmentId === 'rus-turbines');
    await expectNothingAppended(t, async () => {
      expectProblem(await post(t, '/v1/agreements/energy-2025/corrections', { revision: rusAdded.revision, dueDate: '2027-01-01', reason: 'typo' }, bearer(venEditor)), 403);
    });
    const own = await post(t, '/v1/agreements/energy-2025/corrections', { revision: rusAdded.revision, dueDate: '2027-01-01', reason: 'typo' }, bearer(rusEditor));
    expect(own.statusCode, own.body).toBe(200);
  });

  it('answers 404, not 403, for what does not exist', async () => {
    expectProblem(await post(t, '/v1/agreements/nowhere-2025/commitments/some-commitment/progress', { percent: 5 }, bearer(venEditor)), 404);
  });

  it('schedules reviews of its parties\' agreements only', async () => {
    const rusChn = await post(t, '/v1/agreements', agreementInput({ id: 'rus-chn-2025', parties: ['RUS', 'CHN'], commitments: [] }), bearer(admin));
    expect(rusChn.statusCode).toBe(201);
    const review = (agreementIds: string[]) => ({
      title: 'Quarterly review', scheduledFor: new Date(Date.now() + 30 * 86_400_000).toISOString(), agreementIds,
      attendees: [{ email: 'desk@mppre.gob.ve', locale: 'es' }],
    });
    await expectNothingAppended(t, async () => {
      // An agreement VEN does not see is, to its key, one that does not exist.
      const p = expectProblem(await post(t, '/v1/reviews', review(['energy-2025', 'rus-chn-2025']), bearer(venEditor)), 400);
      expect(p.code).toBe('unknown_agreement');
      expect(p.errors).toEqual([{ path: 'agreementIds.1', message: 'agreement rus-chn-2025 does not exist' }]);
    });
    const ok = await post(t, '/v1/reviews', { ...review(['energy-2025']), id: 'energy-review' }, bearer(venEditor));
    expect(ok.statusCode, ok.body).toBe(201);
    const byAdmin = await post(t, '/v1/reviews', { ...review(['rus-chn-2025']), id: 'rus-chn-review' }, bearer(admin));
    expect(byAdmin.statusCode, byAdmin.body).toBe(201);
    await expectNothingAppended(t, async () => {
      expectProblem(await post(t, "/v1/reviews/rus-chn-review/cancellation", { reason: "no" }, bearer(venEditor)), 404);
    });
    // RUS alone may ask to cancel a RUS-CHN review: a proposal until CHN confirms (joint-acts.int.spec.ts).
    const proposed = await post(t, '/v1/reviews/rus-chn-review/cancellation', { reason: 'moved' }, bearer(rusEditor));
    expect(proposed.statusCode, proposed.body).toBe(200);
    expect(proposed.json<Json>().pendingProposals).toEqual([expect.objectContaining({ kind: 'cancellation', byParties: ['RUS'] })]);
  });

  it('rates only its own parties\' commitments in a review outcome, and only commitments that exist', async () => {
    const scheduled = await post(t, '/v1/reviews', {
      id: 'energy-outcome-review', title: 'Energy review', scheduledFor: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      agreementIds: ['energy-2025'], attendees: [{ email: 'desk@mppre.gob.ve', locale: 'es' }],
    }, bearer(venEditor));
    expect(scheduled.statusCode, scheduled.body).toBe(201);
    const outcome = (assessments: Json[]) => ({ assessments });
    await expectNothingAppended(t, async () => {
      // VEN rates the commitment RUS is responsible for: refused, naming the assessment.
      const other = expectProblem(await post(t, '/v1/reviews/energy-outcome-review/outcome', outcome([
        { agreementId: 'energy-2025', commitmentId: 'ven-grid', rating: 'on_track' },
        { agreementId: 'energy-2025', commitmentId: 'rus-turbines', rating: 'off_track' },
      ]), bearer(venEditor)), 403);
      expect(other.errors).toEqual([{ path: 'assessments.1.commitmentId', message: 'must be one of VEN' }]);
      const ghost = expectProblem(await post(t, '/v1/reviews/energy-outcome-review/outcome', outcome([
        { agreementId: 'energy-2025', commitmentId: 'does-not-exist', rating: 'done' },
      ]), bearer(venEditor)), 400);
      expect(ghost.code).toBe('unknown_commitment');
      expect(ghost.errors).toEqual([{ path: 'assessments.0.commitmentId', message: 'commitment does-not-exist does not exist in agreement energy-2025' }]);
    });
    const own = await post(t, '/v1/reviews/energy-outcome-review/outcome', outcome([
      { agreementId: 'energy-2025', commitmentId: 'ven-grid', rating: 'on_track' },
      { agreementId: 'energy-2025', rating: 'at_risk' },
    ]), bearer(venEditor));
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json<Json>().pendingProposals).toEqual([expect.objectContaining({ kind: 'outcome', byParties: ['VEN'] })]);
  });

  it('keeps Idempotency-Keys apart per key: the same key from two callers is two requests', async () => {
    const headers = { 'idempotency-key': 'daily-report-1' };
    const a = await post(t, '/v1/agreements/energy-2025/commitments/ven-grid/progress', { percent: 41 }, { ...bearer(venEditor), ...headers });
    const b = await post(t, '/v1/agreements/energy-2025/commitments/rus-turbines/progress', { percent: 42 }, { ...bearer(rusEditor), ...headers });
    expect([a.statusCode, b.statusCode]).toEqual([200, 200]);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    const again = await post(t, '/v1/agreements/energy-2025/commitments/ven-grid/progress', { percent: 41 }, { ...bearer(venEditor), ...headers });
    expect(again.headers['idempotent-replayed']).toBe('true');
  });
});

describe('security headers and CORS', () => {
  it('sends helmet\'s headers on API answers and on the documentation', async () => {
    for (const res of [await asAdmin('/v1/dashboard'), await get(t, '/docs/'), await get(t, '/v1/dashboard')]) {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    }
  });

  it('answers no cross-origin request unless its origin is configured', async () => {
    const res = await get(t, '/v1/dashboard', { ...bearer(admin), origin: 'https://evil.example' });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();

    const c = await createTestApp({ keys, corsOrigins: ['https://tool.mppre.gob.ve'] });
    try {
      const allowed = await get(c, '/v1/dashboard', { ...bearer(admin), origin: 'https://tool.mppre.gob.ve' });
      expect(allowed.headers['access-control-allow-origin']).toBe('https://tool.mppre.gob.ve');
      expect(allowed.headers['access-control-expose-headers']).toContain('ETag');
      const other = await get(c, '/v1/dashboard', { ...bearer(admin), origin: 'https://evil.example' });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      // A preflight carries no credentials and is answered without them.
      const preflight = await c.app.inject({
        method: 'OPTIONS', url: '/v1/agreements',
        headers: { origin: 'https://tool.mppre.gob.ve', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,if-match' },
      });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-headers']).toContain('Authorization');
    } finally {
      await c.close();
    }
  });
});

describe('rate limits per key', () => {
  it('answers 429 problem+json with Retry-After past the limit, for that key only', async () => {
    const r = await createTestApp({ keys, rateLimit: { max: 3, windowMs: 60_000 } });
    try {
      for (let i = 0; i < 3; i++) expect((await get(r, '/v1/dashboard', bearer(viewer))).statusCode).toBe(200);
      const limited = await get(r, '/v1/dashboard', bearer(viewer));
      const p = expectProblem(limited, 429);
      expect(p.code).toBe('rate_limited');
      expect(p.detail).toContain('key press-office');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      await expectNothingAppended(r, async () => {
        expectProblem(await post(r, '/v1/agreements', venRusAgreement, bearer(viewer)), 429);
      });
      expect((await get(r, '/v1/dashboard', bearer(auditor))).statusCode).toBe(200);
      // Probes are never limited.
      for (let i = 0; i < 5; i++) expect((await get(r, '/health')).statusCode).toBe(200);
      // Without a key, requests are counted per address, so guessing keys is limited too.
      for (let i = 0; i < 3; i++) expectProblem(await get(r, '/v1/dashboard', { authorization: `Bearer cm_guess_${i}_xxxxxxxx` }), 401);
      expectProblem(await get(r, '/v1/dashboard', { authorization: 'Bearer cm_guess_4_xxxxxxxx' }), 429);
    } finally {
      await r.close();
    }
  });

  describe('on Redis', () => {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
    const namespace = `test-rate-${randomUUID().slice(0, 8)}`;
    afterEach(async () => {
      const found = await redis.keys(`${namespace}:*`);
      if (found.length) await redis.del(...found);
    });
    afterAll(() => redis.disconnect());

    it('shares one count between api instances', async () => {
      const rateLimit = { max: 4, windowMs: 60_000, redis, namespace };
      const one = await createTestApp({ keys, rateLimit });
      const two = await createTestApp({ keys, rateLimit });
      try {
        const codes: number[] = [];
        for (let i = 0; i < 3; i++) {
          codes.push((await get(one, '/v1/dashboard', bearer(viewer))).statusCode);
          codes.push((await get(two, '/v1/dashboard', bearer(viewer))).statusCode);
        }
        expect(codes).toEqual([200, 200, 200, 200, 429, 429]);
        expect(await redis.keys(`${namespace}:rate:*`)).not.toEqual([]);
      } finally {
        await one.close();
        await two.close();
      }
    });
  });
});

describe('a keys file deleted while the service runs', () => {
  it('refuses every key with 401 within about a second, rather than keeping the last keys valid', async () => {
    const own = await createTestApp({ keys: [admin, viewer] });
    try {
      expect((await get(own, '/v1/agreements', bearer(admin))).statusCode).toBe(200);
      rmSync(join(own.dir, 'api-keys.json'));
      // The ring re-checks the file at most once a second.
      await sleep(1100);
      for (const key of [admin, viewer]) expect(expectProblem(await get(own, '/v1/agreements', bearer(key)), 401).code).toBe('invalid_credentials');
    } finally {
      await own.close();
    }
  });
});
