// Idempotency answers in Redis, for deployments where api processes on several machines share
// no file (the EventStoreDB log). Each answer expires after its retention (48 h by default).
import type { Redis } from 'ioredis';
import { IDEMPOTENCY_RETENTION_MS, type IdempotencyRecord, type IdempotencyStore } from './idempotency-store';

export function createRedisIdempotencyStore(redis: Redis, options: { namespace: string; retentionSeconds?: number }): IdempotencyStore {
  const retention = options.retentionSeconds ?? IDEMPOTENCY_RETENTION_MS / 1000;
  const keyOf = (scope: string, key: string) => `${options.namespace}:idem:${Buffer.from(`${scope}\n${key}`).toString('base64url')}`;
  return {
    async get(scope, key) {
      const v = await redis.get(keyOf(scope, key));
      return v ? (JSON.parse(v) as IdempotencyRecord) : null;
    },
    async put(record) {
      // NX: the first answer stays the answer, whatever a racing duplicate writes.
      await redis.set(keyOf(record.scope, record.key), JSON.stringify(record), 'EX', retention, 'NX');
    },
    async prune() {
      return 0; // expiry does it
    },
  };
}
