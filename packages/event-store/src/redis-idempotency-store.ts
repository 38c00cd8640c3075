// Idempotency claims and answers in Redis, for deployments where api processes on several
// machines share no file (the EventStoreDB log). A claim is taken with SET NX; taking over a
// claim whose owner is gone, completing and releasing run as Lua scripts that check the hash and
// the owner in one step, so a late or foreign owner never overwrites what another wrote. Each
// key expires after its retention (48 h by default), pending or answered.
import type { Redis } from 'ioredis';
import { IDEMPOTENCY_LEASE_MS, IDEMPOTENCY_RETENTION_MS, idempotencyOwnerGone, type ClaimOutcome, type IdempotencyRecord, type IdempotencyStore } from './idempotency-store.js';

/** A pending claim: the hash and its owner's lease; an answered one has the record's fields too. */
type Stored = Partial<IdempotencyRecord> & { scope: string; key: string; requestHash: string; createdAt: string; owner?: string; leaseUntil?: string };

// ARGV: requestHash, owner, now, leaseUntil, pendingJson, retentionSeconds, goneOwner (an owner known dead, or '')
const CLAIM_EXISTING = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[6])
  return {'claimed'}
end
local r = cjson.decode(v)
if r.requestHash ~= ARGV[1] then return {'mismatch'} end
if r.statusCode then return {'done', v} end
if type(r.owner) == 'string' and r.owner ~= ARGV[7] and type(r.leaseUntil) == 'string' and r.leaseUntil > ARGV[3] then return {'in_flight', r.owner} end
r.owner = ARGV[2]
r.leaseUntil = ARGV[4]
redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
return {'claimed'}`;

// ARGV: owner, recordJson
const COMPLETE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local r = cjson.decode(v)
if r.statusCode or r.owner ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1`;

// ARGV: owner, forget ('1': delete; '0': keep the hash, drop the owner)
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local r = cjson.decode(v)
if r.statusCode or r.owner ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
else
  r.owner = nil
  r.leaseUntil = nil
  redis.call('SET', KEYS[1], cjson.encode(r), 'KEEPTTL')
end
return 1`;

export function createRedisIdempotencyStore(redis: Redis, options: { namespace: string; retentionSeconds?: number }): IdempotencyStore {
  const retention = options.retentionSeconds ?? IDEMPOTENCY_RETENTION_MS / 1000;
  const keyOf = (scope: string, key: string) => `${options.namespace}:idem:${Buffer.from(`${scope}\n${key}`).toString('base64url')}`;
  const answered = (v: string | null): IdempotencyRecord | null => {
    if (!v) return null;
    const s = JSON.parse(v) as Stored;
    if (s.statusCode === undefined) return null;
    return { scope: s.scope, key: s.key, requestHash: s.requestHash, statusCode: s.statusCode, body: s.body, headers: s.headers ?? {}, createdAt: s.createdAt };
  };
  return {
    async claim(r): Promise<ClaimOutcome> {
      const leaseUntil = new Date(Date.parse(r.now) + (r.leaseMs ?? IDEMPOTENCY_LEASE_MS)).toISOString();
      const pending: Stored = { scope: r.scope, key: r.key, requestHash: r.requestHash, createdAt: r.now, owner: r.owner, leaseUntil };
      const k = keyOf(r.scope, r.key);
      if ((await redis.set(k, JSON.stringify(pending), 'EX', retention, 'NX')) === 'OK') return { state: 'claimed' };
      const attempt = async (gone: string) =>
        (await redis.eval(CLAIM_EXISTING, 1, k, r.requestHash, r.owner, r.now, leaseUntil, JSON.stringify(pending), retention, gone)) as [string, string?];
      let [state, value] = await attempt('');
      // Held by a process of this host that no longer exists: take over from exactly that owner.
      if (state === 'in_flight' && value && idempotencyOwnerGone(value)) [state, value] = await attempt(value);
      if (state === 'done') return { state, record: answered(value!)! };
      return { state: state as 'claimed' | 'mismatch' | 'in_flight' };
    },
    async complete(record, owner) {
      return (await redis.eval(COMPLETE, 1, keyOf(record.scope, record.key), owner, JSON.stringify(record))) === 1;
    },
    async release(scope, key, owner, { forget }) {
      await redis.eval(RELEASE, 1, keyOf(scope, key), owner, forget ? '1' : '0');
    },
    async get(scope, key) {
      return answered(await redis.get(keyOf(scope, key)));
    },
    async prune() {
      return 0; // expiry does it
    },
  };
}
