// The dashboard's side of the API: GET /v1/me tells the page who the key is and what it may do
// (and answers without a key under AUTH=off), and GET / needs no key, carries the page's strict
// CSP, and says what to run when the page is not built. The page itself is driven in a browser
// by tests/e2e/dashboard.e2e.spec.ts.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, get } from './testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from './testing/test-app.js';

const viewer: TestKey = { name: 'press-office', role: 'viewer', parties: ['VEN'], secret: 'cm_viewer_secret_0001' };
const auditor: TestKey = { name: 'court-of-audit', role: 'auditor', secret: 'cm_auditor_secret_0001' };
const missing = join(mkdtempSync(join(tmpdir(), 'cm-web-')), 'not-built');
const built = mkdtempSync(join(tmpdir(), 'cm-web-built-'));
mkdirSync(join(built, 'assets'));
writeFileSync(join(built, 'index.html'), '<!doctype html><title>x</title><script type="module" src="/assets/app-abc123.js"></script>');
writeFileSync(join(built, 'assets', 'app-abc123.js'), 'console.log(1)');

let t: TestApp;
let open: TestApp;
let unbuilt: TestApp;
beforeAll(async () => {
  t = await createTestApp({ keys: [viewer, auditor], webRoot: built });
  open = await createTestApp({ webRoot: built });
  unbuilt = await createTestApp({ keys: [viewer], webRoot: missing });
});
afterAll(async () => Promise.all([t.close(), open.close(), unbuilt.close()]));

describe('GET /v1/me', () => {
  it("tells the key's name, role, parties and rights", async () => {
    expect((await get(t, '/v1/me', bearer(viewer))).json()).toEqual({
      name: 'press-office', role: 'viewer', parties: ['VEN'], auth: 'on', may: { read: true, command: false, audit: false },
    });
    expect((await get(t, '/v1/me', bearer(auditor))).json()).toMatchObject({ role: 'auditor', parties: [], may: { read: true, command: false, audit: true } });
  });

  it('refuses a wrong key or none with 401, and answers without a key under AUTH=off', async () => {
    expect(expectProblem(await get(t, '/v1/me', { authorization: 'Bearer cm_not_a_key_of_this_service' }), 401).code).toBe('invalid_credentials');
    expect(expectProblem(await get(t, '/v1/me'), 401).code).toBe('credentials_required');
    expect((await get(open, '/v1/me')).json()).toMatchObject({ name: 'anonymous', role: 'admin', auth: 'off', may: { command: true, audit: true } });
  });
});

describe('GET /', () => {
  it('serves the page with no key, revalidated, under a CSP that admits only this origin; hashed assets are immutable', async () => {
    const page = await get(t, '/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['cache-control']).toBe('no-cache');
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https:/);
    const asset = await get(t, '/assets/app-abc123.js');
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await get(t, '/docs')).statusCode).toBe(200);
    expect((await get(t, '/v1/dashboard')).statusCode).toBe(401);
  });

  it('answers 503 saying to run pnpm build when the page is not built', async () => {
    const res = await get(unbuilt, '/');
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('run `pnpm build`');
    expect((await get(unbuilt, '/health')).statusCode).toBe(200);
  });
});
