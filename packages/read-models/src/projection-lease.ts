// One active projector per projection: a Redis lease (SET NX PX) whose value is a fencing
// token that grows with every acquisition. The holder renews it; when it dies the lease
// expires and another instance takes over within a few seconds. Writes are guarded by the
// token (see the read store's commit), so a holder that paused past its lease cannot write.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
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

  async function tick() {
    try {
      if (current) {
        const renewed = await options.redis.eval(RENEW, 1, options.key, current.token, ttl);
        if (renewed !== 1) await release('lost (expired or taken over)');
      } else {
        const fence = await options.redis.incr(`${options.key}:fence`);
        const token = `${String(fence).padStart(12, '0')}:${instance}`;
        const ok = await options.redis.set(options.key, token, 'PX', ttl, 'NX');
        if (ok === 'OK') {
          // Renewals touch the lease key itself; writers watch this one, which moves only on a takeover.
          await options.redis.set(`${options.key}:holder`, token);
          log.info({ token }, 'projection lease acquired');
          const abort = new AbortController();
          const stop = await work({ key: `${options.key}:holder`, token }, abort.signal);
          current = { token, stop, abort };
        }
      }
    } catch (err) {
      log.error({ err }, 'lease check failed');
      if (current) await release('redis unreachable');
    } finally {
      if (!stopped) timer = setTimeout(() => void tick(), Math.max(200, Math.floor(ttl / 3)));
    }
  }
  void tick();

  return {
    holding: () => current !== null,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const held = await release('shutting down');
      if (held) await options.redis.eval(RELEASE, 1, options.key, held.token).catch(() => undefined);
    },
  };
}
