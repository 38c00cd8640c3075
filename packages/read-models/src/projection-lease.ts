// One active projector per projection: a Redis lease (SET NX PX) whose value is a fencing
// token that grows with every acquisition. The holder renews it; when it dies the lease
// expires and another instance takes over within a few seconds. Writes are guarded by the
// token (see the read store's commit), so a holder that paused past its lease cannot write.
// Taking the lease, renewing it and releasing it are each one script: a holder paused between
// two commands can neither take a lease that expired meanwhile nor touch its successor's.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

// KEYS[1] the lease, [2] the fence counter, [3] the holder; ARGV[1] the instance, [2] the ttl.
// The lease and the holder name the new token in the same step, or nothing changes.
const ACQUIRE = `
if redis.call('exists', KEYS[1]) == 1 then return false end
local token = string.format('%012d', redis.call('incr', KEYS[2])) .. ':' .. ARGV[1]
redis.call('set', KEYS[1], token, 'PX', ARGV[2])
redis.call('set', KEYS[3], token)
return token`;
// Renewed only while both the lease and the holder still name this token: a lease whose writes are
// refused is given up (and taken afresh) rather than kept alive with a projector that cannot write.
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] and redis.call('get', KEYS[2]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export type LeaseOptions = {
  redis: Redis;
  key: string;
  ttlMs?: number;
  logger: Logger;
};

/** `key` is the fence: it names the latest holder and changes only when the lease changes hands. */
export type HeldLease = { key: string; token: string };

/**
 * Runs `work` whenever this instance holds the lease; `work` gets the lease and a signal that
 * aborts when the lease is lost. Resolves when stopped.
 */
export function runWithLease(options: LeaseOptions, work: (lease: HeldLease, lost: AbortSignal) => Promise<() => Promise<void>>) {
  const ttl = options.ttlMs ?? 3000;
  const log = options.logger.child({ component: 'lease', lease: options.key });
  const instance = randomUUID().slice(0, 8);
  const holderKey = `${options.key}:holder`;
  let stopped = false;
  let current: { token: string; stop: () => Promise<void>; abort: AbortController } | null = null;
  let timer: NodeJS.Timeout | null = null;

  async function release(reason: string) {
    if (!current) return;
    const held = current;
    current = null;
    held.abort.abort();
    await held.stop().catch((err: unknown) => log.error({ err }, 'stopping the leased work failed'));
    log.warn({ token: held.token, reason }, 'projection lease released');
    return held;
  }

  /** Stops the work, then frees the lease for the next instance (only if it is still ours). */
  async function giveUp() {
    const held = await release('shutting down');
    if (held) await options.redis.eval(RELEASE, 1, options.key, held.token).catch(() => undefined);
  }

  async function tick() {
    try {
      if (current) {
        const renewed = await options.redis.eval(RENEW, 2, options.key, holderKey, current.token, ttl);
        if (renewed !== 1) await release('lost (expired or taken over)');
      } else {
        // Renewals touch the lease key itself; writers watch the holder, which moves only on a takeover.
        const token = (await options.redis.eval(ACQUIRE, 3, options.key, `${options.key}:fence`, holderKey, instance, ttl)) as string | null;
        if (token) {
          log.info({ token }, 'projection lease acquired');
          const abort = new AbortController();
          const stop = await work({ key: holderKey, token }, abort.signal);
          current = { token, stop, abort };
        }
      }
    } catch (err) {
      log.error({ err }, 'lease check failed');
      if (current) await release('redis unreachable');
    } finally {
      if (!stopped) timer = setTimeout(() => void (ticking = tick()), Math.max(200, Math.floor(ttl / 3)));
    }
  }
  let ticking = tick();

  return {
    holding: () => current !== null,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      // A check under way may be starting the work: let it finish, so that what it started is stopped too.
      await ticking;
      await giveUp();
    },
  };
}
