// The webhook routes as an admin uses them: register (the secret shown once), list, pause and
// resume deliveries, delete; for admins only; a URL that could reach inside is refused.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agreementInput, expectNothingAppended, expectProblem, get, post, type Json } from '../testing/api-fixtures.js';
import { bearer, createTestApp, type TestApp, type TestKey } from '../testing/test-app.js';

const admin: TestKey = { name: 'ops-admin', role: 'admin', secret: 'cm_hooks_admin_0001' };
const editor: TestKey = { name: 'mfa-ven', role: 'editor', parties: ['VEN'], secret: 'cm_hooks_editor_0001' };

let t: TestApp;
let receiver: Server;
let url: string;
const ids: string[] = [];
beforeAll(async () => {
  t = await createTestApp({ keys: [admin, editor] });
  receiver = createServer((req, res) => {
    ids.push(String(req.headers['webhook-id']));
    req.resume();
    req.on('end', () => res.writeHead(200).end());
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
});
afterAll(async () => {
  await new Promise((r) => receiver.close(r));
  await t.close();
});


describe('webhook routes', () => {
  it('register, list without the secret, pause, resume and delete; deliveries start at registration', async () => {
    expect((await post(t, '/v1/agreements', agreementInput({ id: 'before-hook' }), bearer(admin))).statusCode).toBe(201);
    const r = await post(t, '/v1/webhooks', { url, types: ['AgreementSigned'] }, bearer(admin));
    expect(r.statusCode, r.body).toBe(201);
    const hook = r.json<Json>();
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const listed = (await get(t, '/v1/webhooks', bearer(admin))).json<Json>().items;
    expect(listed).toEqual([expect.objectContaining({ id: hook.id, url, status: 'active' })]);
    expect(JSON.stringify(listed)).not.toContain(hook.secret);

    expect((await post(t, `/v1/webhooks/${hook.id}/pause`, {}, bearer(admin))).json<Json>().status).toBe('paused');
    const signed = await post(t, '/v1/agreements', agreementInput({ id: 'after-hook' }), bearer(admin));
    const store = (await import('../webhooks/webhook-dispatcher.js')).createWebhookStore(t.eventStore.db);
    expect(store.get(hook.id)!.status).toBe('paused');
    const resumed = await post(t, `/v1/webhooks/${hook.id}/resume`, {}, bearer(admin));
    expect(resumed.json<Json>().status).toBe('active');
    const [after] = await t.eventStore.readStream('agreement-after-hook', { limit: 1 });
    const deadline = Date.now() + 3000;
    while (!ids.includes(after!.id) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    // Only what was signed after the registration, once.
    expect(ids).toEqual([after!.id]);
    expect(signed.statusCode).toBe(201);

    const deleted = await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${hook.id}`, headers: bearer(admin) });
    expect(deleted.statusCode).toBe(204);
    expect(expectProblem(await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${hook.id}`, headers: bearer(admin) }), 404).code).toBe('webhook_not_found');
  });

  it('are for admins only, and refuse a URL that is not https or resolves inside, naming url', async () => {
    expect(expectProblem(await post(t, '/v1/webhooks', { url }, bearer(editor)), 403).code).toBe('role_not_allowed');
    expect(expectProblem(await get(t, '/v1/webhooks', bearer(editor)), 403).code).toBe('role_not_allowed');
    await expectNothingAppended(t, async () => {
      for (const bad of ['http://example.org/hook', 'https://169.254.169.254/latest', 'https://10.1.2.3/hook']) {
        const r = expectProblem(await post(t, '/v1/webhooks', { url: bad }, bearer(admin)), 400);
        expect(r.errors[0].path, bad).toBe('url');
      }
      expect(expectProblem(await post(t, '/v1/webhooks', { url, types: ['Nope'] }, bearer(admin)), 400).errors[0].path).toBe('types.0');
    });
    expect((await get(t, '/v1/webhooks', bearer(admin))).json<Json>().items).toEqual([]);
  });

  it('honour Idempotency-Key: a repeat answers the first answer (secret too) without a second subscription; another body under the key is 422', async () => {
    const keyed = (key: string) => ({ ...bearer(admin), 'idempotency-key': key });
    const hookIds = async () => (await get(t, '/v1/webhooks', bearer(admin))).json<Json>().items.map((h: Json) => h.id as string);
    const before = new Set(await hookIds());
    const added = async () => (await hookIds()).filter((id: string) => !before.has(id)).sort();
    const first = await post(t, '/v1/webhooks', { url, types: ['AgreementSigned'] }, keyed('hook-once'));
    expect(first.statusCode, first.body).toBe(201);
    const again = await post(t, '/v1/webhooks', { types: ['AgreementSigned'], url }, keyed('hook-once'));
    expect(again.statusCode, again.body).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.json<Json>()).toEqual(first.json<Json>());
    const other = expectProblem(await post(t, '/v1/webhooks', { url, types: ['AgreementTerminated'] }, keyed('hook-once')), 422);
    expect(other.code).toBe('idempotency_key_reused');
    expect(other.errors[0].path).toBe('Idempotency-Key');
    expect(await added()).toEqual([first.json<Json>().id]);

    // A refusal frees the key for the corrected request.
    expect(expectProblem(await post(t, '/v1/webhooks', { url: 'http://example.org/hook' }, keyed('hook-fixed')), 400).errors[0].path).toBe('url');
    const fixed = await post(t, '/v1/webhooks', { url }, keyed('hook-fixed'));
    expect(fixed.statusCode, fixed.body).toBe(201);
    expect(fixed.headers['idempotent-replayed']).toBeUndefined();
    const mine = await added();
    expect(mine).toEqual([first.json<Json>().id, fixed.json<Json>().id].sort());
    for (const id of mine) await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${id}`, headers: bearer(admin) });
  });
});
