// Webhook deliveries to a real receiver on loopback, from a real log: every event once per id
// and in order, across a restart of the dispatcher (its cursor is durable); a receiver that
// fails 3 times then recovers gets everything (backoff on a test-controlled clock); a day of
// failures marks the subscription failing with the reason; signatures verify with the
// documented check and a tampered body does not; URLs that could reach inside are refused.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqliteDatabase } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import { agreementInput, commitmentInput, post, type Json } from '../testing/api-fixtures.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { generateSecret, verify } from './signature.js';
import { backoffMs, createWebhookDispatcher, createWebhookStore, refuseUrl, type WebhookSubscription } from './webhook-dispatcher.js';

type Received = { id: string; timestamp: string; signature: string; body: string };

let t: TestApp;
let receiver: Server;
let url: string;
const received: Received[] = [];
/** How many of the next requests the receiver refuses with 503. */
let failNext = 0;
let now = new Date('2026-12-01T10:00:00Z');
const logger = createLogger({ level: 'silent' });

beforeAll(async () => {
  t = await createTestApp();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (failNext > 0) {
        failNext -= 1;
        res.writeHead(503).end();
        return;
      }
      received.push({ id: String(req.headers['webhook-id']), timestamp: String(req.headers['webhook-timestamp']), signature: String(req.headers['webhook-signature']), body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  for (const id of ['ven-oil-deal', 'ven-gas-deal']) {
    const r = await post(t, '/v1/agreements', agreementInput({ id, commitments: [commitmentInput({ id: 'plant' })] }));
    expect(r.statusCode, r.body).toBe(201);
  }
});
afterAll(async () => {
  await new Promise((r) => receiver.close(r));
  await t.close();
});

const subscription = (overrides: Partial<WebhookSubscription> = {}): WebhookSubscription => ({
  id: 'ministry-tool', url, types: [], parties: [], secret: generateSecret(), status: 'active', cursor: null, attempts: 0,
  firstFailureAt: null, nextAttemptAt: null, lastError: null, createdAt: now.toISOString(), ...overrides,
});
const openStore = (name: string) => createWebhookStore(openSqliteDatabase(join(t.dir, `${name}.sqlite`)));
const dispatcher = (store: ReturnType<typeof createWebhookStore>) => createWebhookDispatcher({ eventStore: t.eventStore, store, now: () => now, logger, allowLoopbackHttp: true });
/** The receiver example of docs/api.md, word for word. */
async function documentedCheck(): Promise<(secret: string, headers: Record<string, string>, body: string) => boolean> {
  const doc = readFileSync(join(import.meta.dirname, '../../../../docs/api.md'), 'utf8');
  const code = /```ts\n([\s\S]*?verifyWebhook[\s\S]*?)```/.exec(doc)?.[1];
  expect(code, 'docs/api.md has the receiver example').toBeDefined();
  const file = join(t.dir, 'receiver.ts');
  writeFileSync(file, code!);
  return ((await import(file)) as { verifyWebhook: (secret: string, headers: Record<string, string>, body: string) => boolean }).verifyWebhook;
}
const logIds = async () => (await t.eventStore.readAll({ after: null, limit: 10_000 })).map((e) => e.id);

describe('webhook deliveries', () => {
  it('deliver every event once per id, in log order, signed, across a restart', async () => {
    received.length = 0;
    // The receiver's check in docs/api.md judges the timestamp against its own clock.
    now = new Date();
    const sub = subscription();
    openStore('once').save(sub);
    await dispatcher(openStore('once')).runOnce();
    expect(received.map((r) => r.id)).toEqual(await logIds());
    // A new event, then a "restarted" dispatcher on the same file: only what is new goes out.
    expect((await post(t, '/v1/agreements/ven-oil-deal/commitments/plant/progress', { percent: 40 })).statusCode).toBe(200);
    await dispatcher(openStore('once')).runOnce();
    const ids = received.map((r) => r.id);
    expect(ids).toEqual(await logIds());
    expect(new Set(ids).size).toBe(ids.length);
    const last = JSON.parse(received.at(-1)!.body) as Json;
    expect(last).toMatchObject({ type: 'ProgressReported', agreementId: 'ven-oil-deal', data: { percent: 40 } });
    // The documented check: the signature verifies, and a tampered body does not.
    const documented = await documentedCheck();
    const headers = (r: Received) => ({ 'webhook-id': r.id, 'webhook-timestamp': r.timestamp, 'webhook-signature': r.signature });
    for (const r of received) {
      expect(verify(sub.secret, r, r.body)).toBe(true);
      expect(documented(sub.secret, headers(r), r.body)).toBe(true);
    }
    const first = received[0]!;
    expect(documented(sub.secret, headers(first), first.body.replace('ven-', 'rus-'))).toBe(false);
    expect(documented(generateSecret(), headers(first), first.body)).toBe(false);
    expect(verify(sub.secret, first, first.body.replace('ven-', 'rus-'))).toBe(false);
  });

  it("a delivery pass's progress never brings back a subscription deleted meanwhile, nor resumes one paused meanwhile", () => {
    const store = openStore('race');
    const passView = subscription({ id: 'raced' });
    store.save(passView);
    // An admin pauses it while a pass (holding its own copy) is delivering; the pass then moves the cursor.
    store.save({ ...passView, status: 'paused' });
    expect(store.recordProgress({ ...passView, cursor: '7' })).toBe(true);
    expect(store.get('raced')).toMatchObject({ status: 'paused', cursor: '7' });
    // An admin deletes it; the pass's next progress must not insert it again.
    expect(store.remove('raced')).toBe(true);
    expect(store.recordProgress({ ...passView, cursor: '8' })).toBe(false);
    expect(store.get('raced')).toBeNull();
    expect(store.list().map((s) => s.id)).not.toContain('raced');
  });

  it('a receiver that fails 3 times then recovers gets everything, retried with backoff', async () => {
    received.length = 0;
    failNext = 3;
    const store = openStore('flaky');
    store.save(subscription({ id: 'flaky' }));
    const d = dispatcher(store);
    await d.runOnce();
    expect(received).toEqual([]);
    expect(store.get('flaky')!).toMatchObject({ status: 'active', attempts: 1, nextAttemptAt: new Date(now.getTime() + backoffMs(1)).toISOString() });
    expect(store.get('flaky')!.lastError).toMatch(/answered 503/);
    // Not yet due: nothing is sent.
    await d.runOnce();
    expect(failNext).toBe(2);
    for (let i = 0; i < 3; i += 1) {
      now = new Date(Date.parse(store.get('flaky')!.nextAttemptAt!));
      await d.runOnce();
    }
    expect(failNext, JSON.stringify(store.get('flaky'))).toBe(0);
    expect(received.map((r) => r.id)).toEqual(await logIds());
    expect(store.get('flaky')!, JSON.stringify(store.get('flaky'))).toMatchObject({ attempts: 0, lastError: expect.any(String), nextAttemptAt: null, status: 'active' });
  });

  it('after a day of failures the subscription is failing, with the reason', async () => {
    const store = openStore('down');
    store.save(subscription({ id: 'down', url: 'http://127.0.0.1:9/nobody-listens' }));
    const d = dispatcher(store);
    const start = now.getTime();
    await d.runOnce();
    while (store.get('down')!.status === 'active') {
      now = new Date(Date.parse(store.get('down')!.nextAttemptAt!));
      await d.runOnce();
    }
    const sub = store.get('down')!;
    expect(sub.status).toBe('failing');
    expect(now.getTime() - start).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(sub.lastError).toMatch(/could not be reached/);
    expect(sub.cursor).toBeNull();
  });

  it('refuses URLs that are not https, or resolve inside, unless allowed', async () => {
    const opts = { allowLoopbackHttp: false };
    expect(await refuseUrl('http://example.org/hook', opts)).toBe('must be https');
    expect(await refuseUrl(url, opts)).toMatch(/only while the service listens on loopback/);
    expect(await refuseUrl(url, { allowLoopbackHttp: true })).toBeNull();
    expect(await refuseUrl('https://127.0.0.1/hook', opts)).toMatch(/private or link-local/);
    expect(await refuseUrl('https://169.254.169.254/latest/meta-data', opts)).toMatch(/private or link-local/);
    expect(await refuseUrl('https://[::1]/hook', opts)).toMatch(/private or link-local/);
    expect(await refuseUrl('https://10.0.0.7/hook', { allowLoopbackHttp: false, allowHosts: ['10.0.0.7'] })).toBeNull();
    expect(await refuseUrl('https://user:pw@example.org/hook', opts)).toBe('must not carry credentials');
  });
});
