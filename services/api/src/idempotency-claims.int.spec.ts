// Idempotency-Key across processes and crashes: two api processes on one log (two apps on one
// SQLite file, their answers in SQLite beside the log or in Redis), a request held between its
// claim and its append, and a process that dies after appending but before its answer is kept.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRedisIdempotencyStore, type EventStore, type IdempotencyStore } from '@cm/event-store';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { agreementInput, commitmentInput, expectProblem, get, post, type Json } from './testing/api-fixtures.js';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisClients: Redis[] = [];
const namespaces: string[] = [];
let apps: TestApp[] = [];
let dirs: string[] = [];
afterEach(async () => {
  for (const t of apps.reverse()) await t.close();
  apps = [];
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  dirs = [];
});
afterAll(async () => {
  const c = new Redis(redisUrl);
  for (const ns of namespaces) {
    const keys = await c.keys(`${ns}:*`);
    if (keys.length) await c.del(...keys);
  }
  c.disconnect();
  redisClients.forEach((r) => r.disconnect());
});

/** Between an app and the log: appends wait for `hold` when set; `crashAfterAppend` throws once the append is written. */
type Gate = { hold: Promise<void> | null; held: number; appends: number; crashAfterAppend: boolean };
const gate = (): Gate => ({ hold: null, held: 0, appends: 0, crashAfterAppend: false });
function gated(store: EventStore, g: Gate): EventStore {
  return {
    ...store,
    append: async (stream, events, options) => {
      if (g.hold) {
        g.held++;
        await g.hold;
      }
      g.appends++;
      const result = await store.append(stream, events, options);
      if (g.crashAfterAppend) throw new Error('injected: the process died after its append was written');
      return result;
    },
  };
}

type Kind = 'sqlite' | 'redis';
/** The idempotency store the app uses: SQLite beside the log (the default), or one Redis namespace shared by both "processes". */
function idempotencyFor(kind: Kind, namespace: string): IdempotencyStore | undefined {
  if (kind === 'sqlite') return undefined;
  const r = new Redis(redisUrl);
  redisClients.push(r);
  return createRedisIdempotencyStore(r, { namespace });
}

async function twoProcesses(kind: Kind, extra: { wrapIdempotency?: (s: IdempotencyStore) => IdempotencyStore; waitMs?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cm-idem-claims-'));
  dirs.push(dir);
  const namespace = `cm-test-idem-claims-${randomUUID()}`;
  namespaces.push(namespace);
  const gates = [gate(), gate()] as const;
  const open = async (i: 0 | 1, wrap?: (s: IdempotencyStore) => IdempotencyStore) => {
    const store = idempotencyFor(kind, namespace);
    const t = await createTestApp({
      dir, now: '2026-12-01T10:00:00.000Z', wrapEventStore: (s) => gated(s, gates[i]),
      idempotency: { ...(store ? { store } : {}), ...(wrap ? { wrap } : {}), leaseMs: 30_000, waitMs: extra.waitMs ?? 5000 },
    });
    apps.push(t);
    return t;
  };
  const one = await open(0, extra.wrapIdempotency);
  const two = await open(1);
  return { one, two, gates };
}

const heldOpen = (g: Gate) => {
  let release!: () => void;
  g.hold = new Promise<void>((r) => (release = r));
  return () => {
    g.hold = null;
    release();
  };
};
const until = async (check: () => boolean) => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
};

async function seed(t: TestApp) {
  const res = await post(t, '/v1/agreements', agreementInput({ id: 'ag-one', commitments: [commitmentInput({ id: 'c-0' }), commitmentInput({ id: 'c-1' })] }));
  expect(res.statusCode, res.body).toBe(201);
}
const base = '/v1/agreements/ag-one';
const revision = (t: TestApp) => t.eventStore.streamRevision('agreement-ag-one');

describe.each<Kind>(['sqlite', 'redis'])('Idempotency-Key claims (%s answers)', (kind) => {
  it('refuses another body under a key still in flight in another process with 422 naming the header, appending nothing', async () => {
    const { one, two, gates } = await twoProcesses(kind);
    await seed(one);
    const key = { 'idempotency-key': `in-flight-${kind}` };
    const release = heldOpen(gates[0]);
    const first = post(one, `${base}/commitments/c-0/progress`, { percent: 10 }, key);
    await until(() => gates[0].held === 1);

    const other = await post(two, `${base}/commitments/c-1/progress`, { percent: 99 }, key);
    const p = expectProblem(other, 422);
    expect(p.code).toBe('idempotency_key_reused');
    expect(p.errors.map((e: Json) => e.path)).toEqual(['Idempotency-Key']);
    expect(gates[1].appends).toBe(0);
    expect(await revision(two)).toBe(2);

    release();
    expect((await first).statusCode).toBe(200);
    expect(await revision(one)).toBe(3);
  });

  it('makes the same request in another process wait for the first and answer its result, appending once', async () => {
    const { one, two, gates } = await twoProcesses(kind);
    await seed(one);
    const key = { 'idempotency-key': `same-${kind}` };
    const release = heldOpen(gates[0]);
    const first = post(one, `${base}/commitments/c-0/progress`, { percent: 30 }, key);
    await until(() => gates[0].held === 1);
    const second = post(two, `${base}/commitments/c-0/progress`, { percent: 30 }, key);
    await new Promise((r) => setTimeout(r, 100));
    expect(gates[1].appends).toBe(0);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.statusCode, a.body).toBe(200);
    expect(b.statusCode, b.body).toBe(200);
    expect(b.headers['idempotent-replayed']).toBe('true');
    expect(b.json()).toEqual(a.json());
    expect(gates[1].appends).toBe(0);
    expect(await revision(one)).toBe(3);
  });

  it('after a process died between its append and its answer: another body is refused, the same request answers what was written and appends nothing', async () => {
    // The dying process never gets to release its claim.
    const { one, two, gates } = await twoProcesses(kind, {
      wrapIdempotency: (s) => ({ ...s, release: async () => undefined, complete: async () => false }),
      waitMs: 60,
    });
    await seed(two);
    const key = { 'idempotency-key': `crash-${kind}` };
    gates[0].crashAfterAppend = true;
    const lost = await post(one, '/v1/agreements', agreementInput({ title: 'Energy cooperation' }), key);
    expect(lost.statusCode).toBe(500);
    const streams = await two.eventStore.listStreams();
    expect(streams).toHaveLength(2);
    const createdStream = streams.find((s) => s !== 'agreement-ag-one')!;
    const written = (await two.eventStore.readStream(createdStream)).at(-1)!;

    // Another request under the key: refused, nothing appended.
    const other = await post(two, '/v1/agreements', agreementInput({ title: 'Fisheries cooperation' }), key);
    expect(expectProblem(other, 422).code).toBe('idempotency_key_reused');
    // The same request while the dead process's claim still holds: "still in flight", retry later.
    const early = await post(two, '/v1/agreements', agreementInput({ title: 'Energy cooperation' }), key);
    expect(expectProblem(early, 409).code).toBe('idempotency_key_in_flight');
    expect(early.headers['retry-after']).toBe('1');

    // Once the claim's lease has run out, the same request runs again: the log sees its own
    // events, nothing new is appended, and the agreement that was written is the answer.
    two.setNow('2026-12-01T10:01:00.000Z');
    const again = await post(two, '/v1/agreements', agreementInput({ title: 'Energy cooperation' }), key);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json<Json>()).toMatchObject({ id: createdStream.replace(/^agreement-/, ''), revision: written.revision, position: written.position });
    expect(gates[1].appends).toBeLessThanOrEqual(1);
    expect(await two.eventStore.listStreams()).toHaveLength(2);
    const replay = await post(two, '/v1/agreements', agreementInput({ title: 'Energy cooperation' }), key);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json()).toEqual(again.json());
  });

  it('after an append whose outcome is unknown, the same request re-runs at once without doubling, another body is refused', async () => {
    const { one, two, gates } = await twoProcesses(kind);
    await seed(one);
    const key = { 'idempotency-key': `unknown-${kind}` };
    gates[0].crashAfterAppend = true;
    expect((await post(one, `${base}/commitments/c-0/progress`, { percent: 40 }, key)).statusCode).toBe(500);
    expect(await revision(one)).toBe(3);
    expect(expectProblem(await post(two, `${base}/commitments/c-1/progress`, { percent: 40 }, key), 422).code).toBe('idempotency_key_reused');
    const again = await post(two, `${base}/commitments/c-0/progress`, { percent: 40 }, key);
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<Json>()).toMatchObject({ progress: 40, revision: 3 });
    expect(await revision(two)).toBe(3);
    const history = (await get(two, `${base}/history?after=${again.json<Json>().position}`)).json<Json>();
    expect(history.events).toHaveLength(4);
  });
});

describe('Idempotency-Key in one process', () => {
  it('lets only one of two same-key requests reach the log while the first is held before its append', async () => {
    const { one, gates } = await twoProcesses('sqlite');
    await seed(one);
    const before = gates[0].appends;
    const key = { 'idempotency-key': 'one-process' };
    const release = heldOpen(gates[0]);
    const a = post(one, `${base}/commitments/c-0/progress`, { percent: 55 }, key);
    await until(() => gates[0].held === 1);
    const b = post(one, `${base}/commitments/c-0/progress`, { percent: 55 }, key);
    const c = post(one, `${base}/commitments/c-0/progress`, { percent: 56 }, key);
    await new Promise((r) => setTimeout(r, 50));
    expect(gates[0].held).toBe(1);
    release();
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(rb.json()).toEqual(ra.json());
    expect(expectProblem(rc, 422).code).toBe('idempotency_key_reused');
    expect(gates[0].appends - before).toBe(1);
    expect(await revision(one)).toBe(3);
  });
});
