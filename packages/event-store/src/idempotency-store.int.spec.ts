import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createSqliteIdempotencyStore, type IdempotencyStore } from './idempotency-store';
import { openSqliteDatabase } from './sqlite-event-store';
import { createRedisIdempotencyStore } from './redis-idempotency-store';

const record = (key: string, statusCode = 201) => ({
  scope: 'mfa-ven', key, requestHash: 'h1', statusCode, body: { id: 'a1', revision: 0 }, headers: { location: '/v1/agreements/a1' }, createdAt: '2026-11-27T10:00:00.000Z',
});

function contract(name: string, make: () => IdempotencyStore) {
  describe(`IdempotencyStore: ${name}`, () => {
    it('remembers an answer by scope and key, and keeps the first when a racing duplicate writes', async () => {
      const store = make();
      const key = randomUUID();
      expect(await store.get('mfa-ven', key)).toBeNull();
      await store.put(record(key));
      await store.put({ ...record(key, 200), requestHash: 'h2' });
      expect(await store.get('mfa-ven', key)).toEqual(record(key));
      expect(await store.get('mfa-rus', key)).toBeNull();
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'cm-idem-'));
const db = openSqliteDatabase(join(dir, 'events.sqlite'));
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const ns = `test-idem-${randomUUID().slice(0, 8)}`;
afterAll(async () => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const keys = await redis.keys(`${ns}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

contract('SQLite', () => createSqliteIdempotencyStore(db));
contract('Redis', () => createRedisIdempotencyStore(redis, { namespace: ns }));

it('SQLite answers survive reopening the file', async () => {
  const key = randomUUID();
  await createSqliteIdempotencyStore(db).put(record(key));
  const again = openSqliteDatabase(join(dir, 'events.sqlite'));
  expect(await createSqliteIdempotencyStore(again).get('mfa-ven', key)).toEqual(record(key));
  again.close();
});
