// The projection lease against the real (shared) Redis, under a key prefix of its own: a holder
// paused between two of its commands, past its lease, while another instance takes the lease
// over, and a lease stopped while its work is still starting.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '@cm/platform';
import { projectBatch } from './ledger-projection.js';
import { runWithLease, type HeldLease } from './projection-lease.js';
import { createRedisReadStore, dropGeneration, LeaseLostError } from './redis-read-store.js';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const logger = createLogger({ level: 'silent' });
const TTL_MS = 300;

let ns: string;
let key: string;
let observer: Redis;
const clients: Redis[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeEach(() => {
  ns = `lease-test-${randomUUID().slice(0, 8)}`;
  key = `${ns}:lease:ledger`;
  observer = new Redis(url);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await observer.del(key, `${key}:fence`, `${key}:holder`);
  await observer.quit();
  for (const c of clients.splice(0)) await c.quit();
});

type Maybe<T> = T | null | undefined | false;

async function until<T>(what: string, probe: () => Promise<Maybe<T>> | Maybe<T>, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function client(): Redis {
  const c = new Redis(url);
  clients.push(c);
  return c;
}

/**
 * A Redis client that stops before its first command issued once the lease key names a token:
 * the holder is frozen between taking the lease and whatever it does next, until `resume()`.
 */
function freezingAfterAcquire(inner: Redis) {
  let frozen = false;
  let thaw: () => void = () => undefined;
  const thawed = new Promise<void>((resolve) => {
    thaw = resolve;
  });
  const redis = new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || !['eval', 'evalsha', 'set', 'get', 'incr', 'pexpire', 'del'].includes(String(prop))) return value;
      return async (...args: unknown[]) => {
        if (!frozen && (await observer.get(key)) !== null) {
          frozen = true;
          await thawed;
        }
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  return { redis, isFrozen: () => frozen, resume: () => thaw() };
}

/** A lease whose work records the token it got and whether it was stopped. */
function leased(redis: Redis) {
  const state = { token: null as string | null, stopped: false };
  const lease = runWithLease({ redis, key, ttlMs: TTL_MS, logger }, async (held: HeldLease) => {
    state.token = held.token;
    return async () => {
      state.stopped = true;
    };
  });
  cleanups.push(() => lease.stop());
  return { lease, state };
}

describe('projection lease: a holder paused past its lease', () => {
  it('cannot take its successor\'s place, renew the lease or release it: the successor keeps writing', async () => {
    const stale = freezingAfterAcquire(client());
    const first = leased(stale.redis);
    await until('the first holder frozen right after taking the lease', () => stale.isFrozen());
    const firstToken = (await observer.get(key))!;

    // Frozen, it cannot renew: the lease expires and another instance takes it.
    await until('the frozen holder\'s lease to expire', async () => (await observer.get(key)) === null);
    const second = leased(client());
    const secondToken = await until('the second instance to hold the lease', () => second.lease.holding() && second.state.token);
    expect(secondToken > firstToken).toBe(true);

    // The first one resumes where it was frozen, then finds out it lost the lease.
    stale.resume();
    await until('the first holder to stop its work', () => first.state.stopped);
    expect(first.lease.holding()).toBe(false);
    expect(await observer.get(`${key}:holder`)).toBe(secondToken);
    expect(await observer.get(key)).toBe(secondToken);

    // Stopping the stale one leaves the successor's lease in place.
    await first.lease.stop();
    expect(await observer.get(key)).toBe(secondToken);
    expect(second.lease.holding()).toBe(true);

    // And the successor's batches are accepted, the stale holder's refused.
    const store = createRedisReadStore({ url, namespace: ns });
    cleanups.push(async () => {
      await dropGeneration(store.redis, ns, 1);
      await store.redis.del(`${ns}:current`);
      await store.close();
    });
    const nothing = projectBatch({ agreements: new Map(), reviews: new Map() }, []);
    await store.commit(nothing, '1', { from: null, fence: { key: `${key}:holder`, token: secondToken } });
    await expect(store.commit(nothing, '2', { from: '1', fence: { key: `${key}:holder`, token: firstToken } })).rejects.toBeInstanceOf(LeaseLostError);
    expect(await store.checkpoint()).toBe('1');
  });
});

describe('projection lease: the holder key moved while the lease is still ours', () => {
  it('gives the lease up and takes it afresh, so the work gets a token its writes are accepted under', async () => {
    const tokens: string[] = [];
    const lease = runWithLease({ redis: client(), key, ttlMs: TTL_MS, logger }, async (held) => {
      tokens.push(held.token);
      return async () => undefined;
    });
    cleanups.push(() => lease.stop());
    const first = await until('the lease to be held', () => lease.holding() && tokens[0]);

    // Whatever wrote it (an older instance still taking the lease in two steps), every batch under
    // the first token is refused from now on: renewing that lease would stall the projection.
    await observer.set(`${key}:holder`, '000000000000:someone-else');
    const second = await until('the lease taken afresh', () => lease.holding() && tokens[1]);
    expect(second > first).toBe(true);
    expect(await observer.get(`${key}:holder`)).toBe(second);
    expect(await observer.get(key)).toBe(second);
  });
});

describe('projection lease: stopped while its work is starting', () => {
  it('stops the work once it has started and frees the lease, instead of leaving it running', async () => {
    let started: () => void = () => undefined;
    const starting = new Promise<void>((resolve) => {
      started = resolve;
    });
    let letStart: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      letStart = resolve;
    });
    let workStopped = false;
    const lease = runWithLease({ redis: client(), key, ttlMs: TTL_MS, logger }, async () => {
      started();
      await gate;
      return async () => {
        workStopped = true;
      };
    });
    await starting;

    const stopping = lease.stop();
    letStart();
    await stopping;
    expect(workStopped).toBe(true);
    expect(lease.holding()).toBe(false);
    expect(await observer.get(key)).toBeNull();
  });
});
