// Idempotency claims and answers on a real SQLite file and a real Redis: a key is claimed with a
// request hash before anything is appended, only its owner completes or releases it, a claim
// left by a dead owner is taken over by the same request only, answers survive a reopen and are
// pruned only past retention.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_RETENTION_MS, createSqliteIdempotencyStore, type IdempotencyStore } from './idempotency-store.js';
import { createRedisIdempotencyStore } from './redis-idempotency-store.js';
import { openSqliteDatabase } from './sqlite-event-store.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const clients: Redis[] = [];
afterAll(async () => {
  for (const c of clients) {
    const ns = (c as Redis & { ns?: string }).ns;
    if (ns) {
      const keys = await c.keys(`${ns}:*`);
      if (keys.length) await c.del(...keys);
    }
    c.disconnect();
  }
});

const answer = (key: string, createdAt: string, requestHash = 'h') => ({ scope: 'mfa-ven', key, requestHash, statusCode: 200, body: { ok: key }, headers: { etag: '"1"' }, createdAt });
const T0 = '2026-11-27T12:00:00.000Z';
const later = (ms: number) => new Date(Date.parse(T0) + ms).toISOString();
const claim = (store: IdempotencyStore, key: string, requestHash: string, owner: string, now = T0) =>
  store.claim({ scope: 'mfa-ven', key, requestHash, owner, now, leaseMs: 30_000 });

/** Two handles on one store, as two processes see it: two connections to one file, two Redis clients. */
const stores: Record<string, () => [IdempotencyStore, IdempotencyStore]> = {
  sqlite: () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-idem-'));
    dirs.push(dir);
    const path = join(dir, 'events.sqlite');
    return [createSqliteIdempotencyStore(openSqliteDatabase(path)), createSqliteIdempotencyStore(openSqliteDatabase(path))];
  },
  redis: () => {
    const namespace = `cm-test-idem-${randomUUID()}`;
    const [a, b] = [new Redis(redisUrl), new Redis(redisUrl)];
    (a as Redis & { ns?: string }).ns = namespace;
    clients.push(a, b);
    return [createRedisIdempotencyStore(a, { namespace }), createRedisIdempotencyStore(b, { namespace })];
  },
};

describe.each(Object.keys(stores))('%s idempotency claims', (kind) => {
  it('lets one of two owners claim a key; the other sees it in flight, another request sees a mismatch', async () => {
    const [one, two] = stores[kind]!();
    const [a, b] = await Promise.all([claim(one, 'k', 'hash-1', 'owner-a'), claim(two, 'k', 'hash-1', 'owner-b')]);
    expect([a.state, b.state].sort()).toEqual(['claimed', 'in_flight']);
    expect((await claim(two, 'k', 'hash-2', 'owner-c')).state).toBe('mismatch');
    expect(await one.get('mfa-ven', 'k')).toBeNull();
  });

  it('completes only for the owner; then the same request gets the answer and another is refused', async () => {
    const [one, two] = stores[kind]!();
    expect((await claim(one, 'k', 'hash-1', 'owner-a')).state).toBe('claimed');
    expect(await two.complete(answer('k', T0, 'hash-1'), 'owner-b')).toBe(false);
    expect(await one.complete(answer('k', T0, 'hash-1'), 'owner-a')).toBe(true);
    const again = await claim(two, 'k', 'hash-1', 'owner-c');
    expect(again).toMatchObject({ state: 'done', record: { statusCode: 200, body: { ok: 'k' }, headers: { etag: '"1"' } } });
    expect((await claim(two, 'k', 'hash-2', 'owner-d')).state).toBe('mismatch');
  });

  it('lets the same request take over a claim whose lease ran out, never another request', async () => {
    const [one, two] = stores[kind]!();
    expect((await claim(one, 'k', 'hash-1', 'dead-owner')).state).toBe('claimed');
    expect((await claim(two, 'k', 'hash-1', 'owner-b', later(10_000))).state).toBe('in_flight');
    expect((await claim(two, 'k', 'hash-2', 'owner-c', later(60_000))).state).toBe('mismatch');
    expect((await claim(two, 'k', 'hash-1', 'owner-b', later(60_000))).state).toBe('claimed');
    // The dead owner, back late, can no longer overwrite what the new owner answers.
    expect(await one.complete(answer('k', T0, 'hash-1'), 'dead-owner')).toBe(false);
    expect(await two.complete(answer('k', T0, 'hash-1'), 'owner-b')).toBe(true);
  });

  it('lets the same request take over at once a claim whose process on this host is gone, never another request', async () => {
    const [one, two] = stores[kind]!();
    const dead = `${hostname()}/4194305/${randomUUID()}`; // beyond any pid Linux hands out
    expect((await claim(one, 'k', 'hash-1', dead)).state).toBe('claimed');
    expect((await claim(two, 'k', 'hash-2', 'owner-b', later(1_000))).state).toBe('mismatch');
    const live = `${hostname()}/${process.pid}/${randomUUID()}`;
    expect((await claim(two, 'k', 'hash-1', live, later(1_000))).state).toBe('claimed');
    // A live owner keeps its claim for its lease.
    expect((await claim(one, 'k', 'hash-1', 'owner-c', later(2_000))).state).toBe('in_flight');
    expect(await one.complete(answer('k', T0, 'hash-1'), dead)).toBe(false);
    expect(await two.complete(answer('k', T0, 'hash-1'), live)).toBe(true);
  });

  it('frees the key on a refusal (forget), keeps the hash but drops the owner when the outcome is unknown', async () => {
    const [one, two] = stores[kind]!();
    await claim(one, 'refused', 'hash-1', 'owner-a');
    await two.release('mfa-ven', 'refused', 'owner-b', { forget: true }); // not the owner: nothing happens
    expect((await claim(two, 'refused', 'hash-2', 'owner-b')).state).toBe('mismatch');
    await one.release('mfa-ven', 'refused', 'owner-a', { forget: true });
    expect((await claim(two, 'refused', 'hash-2', 'owner-b')).state).toBe('claimed');

    await claim(one, 'unknown', 'hash-1', 'owner-a');
    await one.release('mfa-ven', 'unknown', 'owner-a', { forget: false });
    expect((await claim(two, 'unknown', 'hash-2', 'owner-b')).state).toBe('mismatch');
    // Within what would have been the lease: the same request runs again at once.
    expect((await claim(two, 'unknown', 'hash-1', 'owner-b')).state).toBe('claimed');
  });
});

describe('SQLite idempotency answers', () => {
  it('survive a reopen and are kept at least 24 hours; only those past the retention are pruned', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-idem-'));
    dirs.push(dir);
    const now = Date.parse('2026-11-27T12:00:00.000Z');
    const ago = (hours: number) => new Date(now - hours * 3_600_000).toISOString();
    const first = openSqliteDatabase(join(dir, 'events.sqlite'));
    const store = createSqliteIdempotencyStore(first);
    for (const [key, at] of [['yesterday', ago(25)], ['two-days-ago', ago(49)]] as const) {
      await store.claim({ scope: 'mfa-ven', key, requestHash: 'h', owner: 'o', now: at });
      await store.complete(answer(key, at), 'o');
    }
    first.close();

    const reopened = createSqliteIdempotencyStore(openSqliteDatabase(join(dir, 'events.sqlite')));
    expect(IDEMPOTENCY_RETENTION_MS).toBeGreaterThanOrEqual(24 * 3_600_000);
    expect(await reopened.prune(new Date(now - IDEMPOTENCY_RETENTION_MS).toISOString())).toBe(1);
    expect(await reopened.get('mfa-ven', 'yesterday')).toMatchObject({ statusCode: 200, body: { ok: 'yesterday' }, headers: { etag: '"1"' } });
    expect(await reopened.get('mfa-ven', 'two-days-ago')).toBeNull();
  });

  it('keep answering from a file written before claims existed, and take claims on it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cm-idem-'));
    dirs.push(dir);
    const path = join(dir, 'events.sqlite');
    const old = openSqliteDatabase(path);
    old.exec(`CREATE TABLE idempotency (
      scope TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, status_code INTEGER NOT NULL,
      body TEXT NOT NULL, headers TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (scope, key))`);
    old.prepare("INSERT INTO idempotency VALUES ('mfa-ven', 'before', 'h', 201, '{\"id\":\"a\"}', '{}', ?)").run(T0);
    old.close();
    const store = createSqliteIdempotencyStore(openSqliteDatabase(path));
    expect(await claim(store, 'before', 'h', 'owner-a')).toMatchObject({ state: 'done', record: { statusCode: 201, body: { id: 'a' } } });
    expect((await claim(store, 'before', 'other', 'owner-a')).state).toBe('mismatch');
    expect((await claim(store, 'new', 'h2', 'owner-a')).state).toBe('claimed');
  });
});
