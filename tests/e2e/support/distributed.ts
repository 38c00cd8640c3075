// The distributed shape run on one machine for e2e tests: api and projector processes as
// separate roles (ROLES=api / ROLES=projector) sharing one SQLite log under a DATA_DIR and one
// Redis namespace. Each test takes its own random namespace and drops its keys afterwards.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startService, type ServiceProcess } from './service-process.js';
import { createRandom } from '@cm/read-models/testing';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export type Cluster = { dataDir: string; namespace: string };

/** A namespace no other test (or run) uses: `cm-e2e-<random>`. */
export function randomNamespace(prefix = 'cm-e2e'): string {
  return `${prefix}-${randomUUID().slice(0, 12)}`;
}

/** Deletes every key under `<namespace>:` with SCAN + UNLINK; answers how many. */
export async function dropNamespace(redis: Redis, namespace: string): Promise<number> {
  let cursor = '0';
  let dropped = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) dropped += await redis.unlink(...keys);
  } while (cursor !== '0');
  return dropped;
}

export function redisClient(): Redis {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: false });
  redis.on('error', () => undefined);
  return redis;
}

const roleEnv = (cluster: Cluster, roles: string, logLevel: string) => ({
  REDIS_URL,
  REDIS_NAMESPACE: cluster.namespace,
  ROLES: roles,
  LOG_LEVEL: logLevel,
});

/** An api-only process (reads from Redis); resolves once its GET /ready answers 200. */
export function startApi(cluster: Cluster): Promise<ServiceProcess> {
  return startService({ dataDir: cluster.dataDir, env: roleEnv(cluster, 'api', 'warn'), readyTimeoutMs: 30_000 });
}

/**
 * A projector-only process (no HTTP listener), logging at info so its lease decisions show;
 * resolves once it has logged that it is starting (Redis reached, log opened), not once it holds the lease.
 */
export function startProjector(cluster: Cluster): Promise<ServiceProcess> {
  return startService({ dataDir: cluster.dataDir, env: roleEnv(cluster, 'projector', 'info'), readyWhenStdout: /"msg":"starting"/, readyTimeoutMs: 30_000 });
}

export type LogLine = { level: number; time: string; msg: string; [k: string]: unknown };

/** The process's stdout as pino JSON lines (lines that are not JSON are skipped). */
export function logLines(p: ServiceProcess): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of p.stdout().split('\n')) {
    if (!raw.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(raw) as LogLine);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** The fencing tokens this process logged "projection lease acquired" with, in order. */
export function leasesAcquired(p: ServiceProcess): string[] {
  return logLines(p).filter((l) => l.msg === 'projection lease acquired').map((l) => String(l.token));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` until it answers a value (not undefined); throws after `timeoutMs` with `what`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The same seed gives the same command mix in every run. */
export const prng = (seed: number): (() => number) => createRandom(seed).next;

export function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
