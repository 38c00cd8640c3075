// The HTTP half of `pnpm bench` (issue 7): every figure measured through the real service on
// loopback, beside a baseline measured in the same run.
//   commands  progress reports/s at 1, 16 and 64 clients vs a bare Fastify POST route at the same
//             client counts, and vs raw better-sqlite3 appends of equivalent rows (one
//             transaction and fsync per event, WAL, synchronous=FULL, as the real store);
//   queries   p50/p99 of a filtered commitment list and of the dashboard at 10,000 and 100,000
//             commitments (written straight into the log, then rebuilt by the service at start)
//             vs a bare GET route, one client, sequential;
//   lag       command answer -> a GET with ?after=<position> answered 200, embedded and with
//             Redis (api and projector as separate processes), vs the bare GET round trip;
//   auth      the 16-client command run with an API key and an active (never triggered) rate
//             limiter vs the same with AUTH=off and RATE_LIMIT=off (runs in the order a b b a).
// Every server starts at once at the beginning (the query logs are written meanwhile), then the
// figures are measured one at a time, each server stopped after its turn; nothing is measured
// while anything else of this run is busy. Every child process, temporary folder and Redis
// namespace is registered for cleanup (bench-processes.ts).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { createSqliteEventStore, openSqliteDatabase } from '@cm/event-store';
import type { BenchOptions, BenchRow, BenchSuite } from './bench-kit.js';
import { loggedProblems, onCleanup, startBareServer, startService, stopChild, type Cleanup, type Service } from './bench-processes.js';
import {
  COMMITMENTS, commitmentId, createAgreement, measureBare, measureCommands, type CommandRun, type LoadSummary, type ServiceClient,
} from './commands-bench.js';
import { writeQueryDataset } from './query-dataset.js';

export const HTTP_GROUPS = ['commands', 'queries', 'lag', 'auth'] as const;
export type HttpGroup = (typeof HTTP_GROUPS)[number];

const CLIENT_COUNTS = [1, 16, 64] as const;
const QUERY_SIZES = [10_000, 100_000] as const;
const LIST_QUERY = '/v1/commitments?status=delayed&sector=health&limit=50';
const OVERDUE_QUERY = '/v1/commitments?overdue=true&limit=50';
const DASHBOARD_QUERY = '/v1/dashboard';
const COMMAND_TARGET = 0.4;
const LIST_P99_TARGET_MS = 10;
const LAG_P99_TARGET_MS = 20;

// Redis lag samples cost ~50 ms each (the projector process polls the log), embedded ones ~1 ms.
type Settings = { durationS: number; warmupS: number; latencyS: number; lagSamples: number; redisLagSamples: number };
const settingsFor = (quick: boolean): Settings =>
  quick
    ? { durationS: 2, warmupS: 1, latencyS: 2, lagSamples: 100, redisLagSamples: 100 }
    : { durationS: 5, warmupS: 2, latencyS: 4, lagSamples: 400, redisLagSamples: 200 };

// ---------------------------------------------------------------------------------------------
// Sequential latency: one keep-alive connection, one request at a time, timed with hrtime
// (autocannon's histogram has whole-millisecond resolution, too coarse for a bare route).
// ---------------------------------------------------------------------------------------------

export type LatencyStats = { samples: number; p50Ms: number; p99Ms: number; meanMs: number; maxMs: number };

function stats(ms: number[]): LatencyStats {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { samples: sorted.length, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), meanMs: round(sorted.reduce((s, x) => s + x, 0) / Math.max(1, sorted.length)), maxMs: round(sorted.at(-1) ?? Number.NaN) };
}

type Answer = { status: number; body: string; ms: number };

function createSequentialClient(base: string, headers: Record<string, string>) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(base);
  const send = (method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const started = process.hrtime.bigint();
      const req = http.request({
        agent, host: url.hostname, port: url.port, method, path: urlPath, timeout: 15_000,
        headers: { ...headers, ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }) },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: Number(process.hrtime.bigint() - started) / 1e6 }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer in 15 s`)));
      req.on('error', reject);
      req.end(payload);
    });
  return { send, close: () => agent.destroy() };
}

/** GET `urlPath` one request at a time for `seconds` (after 20 unrecorded requests); every answer must be 200. */
async function measureLatency(base: string, urlPath: string, seconds: number, headers: Record<string, string> = {}): Promise<LatencyStats & { body: string }> {
  const client = createSequentialClient(base, headers);
  try {
    let body = '';
    for (let i = 0; i < 20; i++) body = (await client.send('GET', urlPath)).body;
    const times: number[] = [];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end || times.length < 20) {
      const a = await client.send('GET', urlPath);
      if (a.status !== 200) throw new Error(`GET ${urlPath}: HTTP ${a.status} ${a.body.slice(0, 300)}`);
      times.push(a.ms);
    }
    return { ...stats(times), body };
  } finally {
    client.close();
  }
}

type LagRun = { lag: LatencyStats; command: LatencyStats; sendToVisible: LatencyStats; failures: number; failureSample: string | null };

/**
 * One client, one command at a time: POST a progress report, then GET the commitment with
 * ?after=<the answer's position> (the service holds it until its read models have that position).
 * Lag = command answer received -> GET answered 200, so it includes one GET round trip.
 */
async function measureLag(client: ServiceClient, agreementId: string, samples: number): Promise<LagRun> {
  const http1 = createSequentialClient(client.base, client.headers);
  const lag: number[] = [];
  const command: number[] = [];
  const sendToVisible: number[] = [];
  let failures = 0;
  let failureSample: string | null = null;
  try {
    for (let i = 0; i < samples + 10; i++) {
      const cid = commitmentId(i % COMMITMENTS);
      const c = await http1.send('POST', `/v1/agreements/${agreementId}/commitments/${cid}/progress`, { percent: i % 101 });
      const position = c.status === 200 ? (JSON.parse(c.body) as { position?: unknown }).position : undefined;
      if (typeof position !== 'string') {
        failures++;
        failureSample ??= `command: HTTP ${c.status} ${c.body.slice(0, 200)}`;
        continue;
      }
      const g = await http1.send('GET', `/v1/agreements/${agreementId}/commitments/${cid}?after=${position}`);
      if (g.status !== 200) {
        failures++;
        failureSample ??= `GET ?after=${position}: HTTP ${g.status} ${g.body.slice(0, 200)}`;
        continue;
      }
      if (i < 10) continue; // warm-up
      command.push(c.ms);
      lag.push(g.ms);
      sendToVisible.push(c.ms + g.ms);
    }
  } finally {
    http1.close();
  }
  return { lag: stats(lag), command: stats(command), sendToVisible: stats(sendToVisible), failures, failureSample };
}

/**
 * Feed latency: one Server-Sent Events stream on GET /v1/events (from the log's head), one
 * client sending progress reports one at a time; latency = command sent -> its event pushed
 * on the stream (the event can arrive before the command's answer).
 */
async function measureFeedLatency(client: ServiceClient, agreementId: string, samples: number): Promise<{ feed: LatencyStats; failures: number }> {
  const http1 = createSequentialClient(client.base, client.headers);
  const controller = new AbortController();
  const waiting = new Map<string, () => void>();
  const arrived = new Set<string>();
  try {
    const res = await fetch(`${client.base}/v1/events?types=ProgressReported&agreementId=${agreementId}`, {
      headers: { ...client.headers, accept: 'text/event-stream' }, signal: controller.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`GET /v1/events as a stream: HTTP ${res.status}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    void (async () => {
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        for (const m of buffer.matchAll(/^id: (\d+)$/gm)) {
          arrived.add(m[1]!);
          waiting.get(m[1]!)?.();
        }
        buffer = buffer.slice(buffer.lastIndexOf('\n\n') + 2);
      }
    })().catch(() => undefined);
    const feed: number[] = [];
    let failures = 0;
    for (let i = 0; i < samples + 10; i++) {
      const started = performance.now();
      const c = await http1.send('POST', `/v1/agreements/${agreementId}/commitments/${commitmentId(i % COMMITMENTS)}/progress`, { percent: i % 101 });
      const position = c.status === 200 ? (JSON.parse(c.body) as { position?: unknown }).position : undefined;
      if (typeof position !== 'string') {
        failures++;
        continue;
      }
      const pushed = arrived.has(position) || await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 5000);
        waiting.set(position, () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      waiting.delete(position);
      if (!pushed) failures++;
      else if (i >= 10) feed.push(performance.now() - started);
    }
    return { feed: stats(feed), failures };
  } finally {
    controller.abort();
    http1.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Raw SQLite: the same rows the store writes for a progress report, one transaction each.
// ---------------------------------------------------------------------------------------------

async function rawSqliteAppends(dir: string, seconds: number): Promise<{ eventsPerSecond: number; events: number; seconds: number }> {
  const file = path.join(dir, 'raw.sqlite');
  // The store's own schema (tables and indexes), then only raw statements on it.
  await createSqliteEventStore({ path: file }).close();
  const db = openSqliteDatabase(file); // WAL, synchronous=FULL, as the store
  try {
    const insert = db.prepare(
      `INSERT INTO events (event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
       VALUES (@id, @stream, @revision, @type, @data, @metadata, @recordedAt, @prevHash, @hash)`,
    );
    const upsert = db.prepare(
      `INSERT INTO streams (stream, revision, hash, created_position) VALUES (@stream, @revision, @hash, @position)
       ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision, hash = excluded.hash`,
    );
    const append = db.transaction((row: Record<string, unknown>) => {
      const info = insert.run(row);
      upsert.run({ stream: row['stream'], revision: row['revision'], hash: row['hash'], position: info.lastInsertRowid });
    });
    const stream = 'agreement-bench-raw';
    let prevHash = '0'.repeat(64);
    let events = 0;
    const started = process.hrtime.bigint();
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const recordedAt = new Date().toISOString();
      const data = JSON.stringify({ commitmentId: commitmentId(events % COMMITMENTS), percent: events % 101 });
      const metadata = JSON.stringify({ actor: 'anonymous', occurredAt: recordedAt, correlationId: `bench-raw-${events}`, recordedAt });
      const hash = createHash('sha256').update(`${prevHash}ProgressReported${data}${metadata}`).digest('hex');
      append.immediate({ id: randomUUID(), stream, revision: events, type: 'ProgressReported', data, metadata, recordedAt, prevHash, hash });
      prevHash = hash;
      events++;
    }
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    return { eventsPerSecond: events / elapsed, events, seconds: elapsed };
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

const fmt = (n: number) => Math.round(n).toLocaleString('en');
const sizeText = (n: number) => n.toLocaleString('en');

function throughputRow(group: string, name: string, run: LoadSummary & Partial<Pick<CommandRun, 'verification'>>, baseline: { name: string; value: number; unit: string }, extra: Partial<BenchRow> = {}): BenchRow {
  return {
    group,
    name,
    value: run.requestsPerSecond,
    unit: 'commands/s',
    baseline,
    ratio: baseline.value > 0 ? run.requestsPerSecond / baseline.value : null,
    ...extra,
    details: {
      connections: run.connections, durationS: run.durationS, latencyP50Ms: run.latencyP50Ms, latencyP99Ms: run.latencyP99Ms,
      answers2xx: run.answers2xx, non2xx: run.non2xx, statusCodes: run.statusCodes, errors: run.errors, timeouts: run.timeouts, perSecond: run.perSecond,
      ...(run.verification ? { auditConsistent: run.verification.consistent, audit: run.verification } : {}),
      ...extra.details,
    },
  };
}

/** A latency beside the bare route's: ratio = value / baseline (how many times the bare latency). */
function latencyRow(group: string, name: string, valueMs: number, baseline: { name: string; value: number }, extra: Partial<BenchRow> = {}): BenchRow {
  return {
    group,
    name,
    value: valueMs,
    unit: 'ms',
    baseline: { ...baseline, unit: 'ms' },
    ratio: baseline.value > 0 ? valueMs / baseline.value : null,
    ratioNote: 'latency / bare latency (lower is better)',
    ...extra,
  };
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

const AUTH_OFF = { AUTH: 'off', RATE_LIMIT: 'off' };
const NO_HEADERS: ServiceClient['headers'] = {};

export function createHttpSuite(groups: readonly HttpGroup[] = HTTP_GROUPS): BenchSuite {
  return async (options: BenchOptions) => runHttpSuite(new Set(groups), options);
}

export const httpSuite: BenchSuite = createHttpSuite();

type Started = { service: Service; stop: Cleanup; client: ServiceClient };

async function runHttpSuite(want: Set<HttpGroup>, options: BenchOptions): Promise<BenchRow[]> {
  const { progress } = options;
  const s = settingsFor(options.quick);
  const rows: BenchRow[] = [];
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  };
  const started = async (service: Service, headers: Record<string, string> = NO_HEADERS, auditHeaders = headers): Promise<Started> => ({
    service, stop: onCleanup(`stop ${service.child.name}`, () => stopChild(service.child)), client: { base: service.base, headers, auditHeaders },
  });
  const reportProblems = (service: Service) => {
    const problems = loggedProblems(service.child);
    if (problems.length > 0) progress(`  ${service.child.name} logged ${problems.length} warning(s)/error(s), last: ${problems.at(-1)!.slice(0, 400)}`);
  };

  const commandCounts: number[] = want.has('commands') ? [...CLIENT_COUNTS] : want.has('auth') ? [16] : [];
  const idsFor = (n: number) => Array.from({ length: n }, (_, i) => `bench-c${n}-${String(i).padStart(2, '0')}`);

  // ---- Start-up, nothing measured: every server starts at once, with the query logs written
  // meanwhile, so the run waits for the slowest rather than for the sum. Each server then sits
  // idle (a poll every 50 ms at most) until its turn, and is stopped right after it.
  const startEmbedded = async () => {
    const dataDir = tempDir('cm-bench-embedded-');
    const e = await started(await startService('service (embedded)', { ...AUTH_OFF, DATA_DIR: dataDir, ROLES: 'api,projector' }));
    const ids = [...commandCounts.flatMap(idsFor), ...(want.has('commands') ? ['bench-single'] : []), ...(want.has('lag') ? ['bench-lag'] : [])];
    await inParallel(ids, 4, (id) => createAgreement(e.client, id));
    progress(`  service (embedded, AUTH=off RATE_LIMIT=off) ready with ${ids.length} agreements of ${COMMITMENTS} commitments`);
    return e;
  };

  const startKeyed = async () => {
    const dataDir = tempDir('cm-bench-auth-');
    const secret = `cm_${randomBytes(32).toString('base64url')}`;
    const auditorSecret = `cm_${randomBytes(32).toString('base64url')}`;
    const sha = (x: string) => createHash('sha256').update(x, 'utf8').digest('hex');
    const keysFile = path.join(dataDir, 'bench-api-keys.json');
    // The editor key carries the load; the auditor key only reads the history for the audit afterwards.
    writeFileSync(keysFile, `${JSON.stringify({ keys: [
      { name: 'bench-editor', role: 'editor', parties: ['VEN'], sha256: sha(secret) },
      { name: 'bench-auditor', role: 'auditor', parties: [], sha256: sha(auditorSecret) },
    ] }, null, 2)}\n`, { mode: 0o600 });
    const k = await started(
      await startService('service (API keys)', { DATA_DIR: dataDir, ROLES: 'api,projector', API_KEYS_FILE: keysFile, RATE_LIMIT: '100000000/1m' }),
      { authorization: `Bearer ${secret}` }, { authorization: `Bearer ${auditorSecret}` },
    );
    // Is authentication really on in this build? (Before it landed, the service ignored these variables.)
    const anonymous = await fetch(`${k.service.base}/v1/agreements?limit=1`, { signal: AbortSignal.timeout(5000) });
    await anonymous.arrayBuffer();
    const keyed = await fetch(`${k.service.base}/v1/agreements?limit=1`, { signal: AbortSignal.timeout(5000), headers: k.client.headers });
    await keyed.arrayBuffer();
    const authEnforced = anonymous.status === 401;
    const rateLimiterActive = [...keyed.headers.keys()].some((h) => /ratelimit/i.test(h));
    const ids = Array.from({ length: 16 }, (_, i) => `bench-auth-${String(i).padStart(2, '0')}`);
    await inParallel(ids, 4, (id) => createAgreement(k.client, id));
    progress(`  service (API_KEYS_FILE, RATE_LIMIT=100000000/1m) ready; without a key: HTTP ${anonymous.status} ` +
      `(${authEnforced ? 'authentication enforced' : 'authentication NOT enforced by this build'}), rate-limit headers ${rateLimiterActive ? 'present' : 'absent'}`);
    return { ...k, ids, authEnforced, rateLimiterActive, anonymousStatus: anonymous.status };
  };

  const startRedisPair = async () => {
    const dataDir = tempDir('cm-bench-redis-');
    const namespace = `cm-bench-${randomUUID().slice(0, 8)}`;
    const redis = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined); // failures surface as rejected commands
    await redis.connect();
    const dropNamespace = onCleanup(`delete Redis keys ${namespace}*`, async () => {
      await deleteKeys(redis, `${namespace}*`);
      redis.disconnect();
    });
    const env = { ...AUTH_OFF, DATA_DIR: dataDir, REDIS_URL: options.redisUrl, REDIS_NAMESPACE: namespace };
    const [projector, api] = await Promise.all([
      startService('projector (Redis)', { ...env, ROLES: 'projector' }, { listens: false }).then((x) => started(x)),
      startService('api (Redis)', { ...env, ROLES: 'api' }).then((x) => started(x)),
    ]);
    const { position } = await createAgreement(api.client, 'bench-lag');
    // The projector takes its lease first: the agreement must be visible before anything is timed.
    const probe = await fetch(`${api.service.base}/v1/agreements/bench-lag?after=${position}`, { signal: AbortSignal.timeout(20_000) });
    await probe.arrayBuffer();
    if (probe.status !== 200) throw new Error(`the Redis read models never showed the agreement (HTTP ${probe.status}):\n${projector.service.child.tail.slice(-10).join('\n')}`);
    progress(`  api and projector (Redis read models, REDIS_NAMESPACE=${namespace}) ready`);
    return { api, projector, dropNamespace };
  };

  // One log grown from 10,000 to 100,000 commitments: the small one is copied aside first.
  const startQueryServices = async () => {
    const smallDir = tempDir('cm-bench-queries-10k-');
    const largeDir = tempDir('cm-bench-queries-100k-');
    const [smallSize, largeSize] = QUERY_SIZES;
    const small = await writeQueryDataset(smallDir, smallSize, progress);
    for (const f of readdirSync(smallDir)) if (f.startsWith('events.sqlite')) copyFileSync(path.join(smallDir, f), path.join(largeDir, f));
    progress(`  log of ${sizeText(small.commitments)} commitments written (${small.events} events, ${small.seconds.toFixed(1)} s); growing a copy to ${sizeText(largeSize)}`);
    const queryService = (size: number, dir: string) =>
      startService(`service (${sizeText(size)} commitments)`, { ...AUTH_OFF, DATA_DIR: dir, ROLES: 'api,projector' }, { readyTimeoutMs: 240_000 }).then((x) => started(x));
    const [smallService, large] = await Promise.all([
      queryService(smallSize, smallDir),
      writeQueryDataset(largeDir, largeSize, progress, small).then(async (dataset) => {
        progress(`  log of ${sizeText(dataset.commitments)} commitments written (${dataset.events} events); the service rebuilds its read models from it`);
        return { dataset, service: await queryService(largeSize, largeDir) };
      }),
    ]);
    progress(`  services on ${sizeText(small.commitments)} and ${sizeText(large.dataset.commitments)} commitments ready`);
    return [{ dataset: small, ...smallService }, { dataset: large.dataset, ...large.service }];
  };

  const startupBegan = Date.now();
  progress('start-up: every server at once, and the query logs written meanwhile (nothing is measured yet)');
  const [bare, embedded, keyed, redisPair, queryServices] = await allOrFirstError([
    startBareServer().then((b) => ({ ...b, stop: onCleanup('stop bare fastify', () => stopChild(b.child)) })),
    commandCounts.length > 0 || want.has('lag') ? startEmbedded() : null,
    want.has('auth') ? startKeyed() : null,
    want.has('lag') ? startRedisPair() : null,
    want.has('queries') ? startQueryServices() : null,
  ] as const);
  progress(`start-up done in ${((Date.now() - startupBegan) / 1000).toFixed(1)} s`);

  // ---- 1. The bare Fastify app: POST at every client count a command run uses, GET one at a time.
  const barePost = new Map<number, LoadSummary>();
  for (const [i, n] of commandCounts.entries()) barePost.set(n, await measureBare(bare.base, n, s.durationS, i === 0 ? s.warmupS : 0, progress));
  progress(`bare GET route, one client, sequential, ${s.latencyS} s`);
  const bareGet = await measureLatency(bare.base, '/bench', s.latencyS);
  progress(`  bare GET: p50 ${bareGet.p50Ms.toFixed(3)} ms, p99 ${bareGet.p99Ms.toFixed(3)} ms (${bareGet.samples} requests)`);
  await bare.stop.now();
  const bareBaseline = (n: number) => ({ name: `bare Fastify POST route, ${clients(n)}`, value: barePost.get(n)!.requestsPerSecond, unit: 'req/s' });

  // ---- 2. Raw SQLite appends, on the same file system as the services' data folders.
  let raw: Awaited<ReturnType<typeof rawSqliteAppends>> | null = null;
  if (want.has('commands')) {
    progress(`raw SQLite appends (better-sqlite3, one transaction per event, WAL, synchronous=FULL), ${s.durationS} s`);
    raw = await rawSqliteAppends(tempDir('cm-bench-raw-'), s.durationS);
    progress(`  raw SQLite: ${fmt(raw.eventsPerSecond)} events/s (${raw.events} events)`);
  }

  // ---- 3. The embedded service (AUTH=off, RATE_LIMIT=off): commands, lag, and run (a) of auth.
  let authOff: CommandRun | null = null;
  if (embedded) {
    const runs = new Map<number, CommandRun>();
    for (const [i, n] of commandCounts.entries()) {
      const label = `progress reports, ${clients(n)}, ${n} stream${n === 1 ? '' : 's'}`;
      runs.set(n, await measureCommands(embedded.client, { label, connections: n, shape: 'multi', agreementIds: idsFor(n), durationS: s.durationS, warmupS: i === 0 ? s.warmupS : 0 }, progress));
    }
    authOff = runs.get(16) ?? null;
    if (want.has('commands')) {
      for (const n of CLIENT_COUNTS) {
        const run = runs.get(n)!;
        const target = n === 16 ? { target: { text: `>= ${COMMAND_TARGET.toFixed(2)}x the bare route`, met: run.requestsPerSecond / bareBaseline(16).value >= COMMAND_TARGET } } : {};
        rows.push(throughputRow('commands', `progress reports, ${clients(n)}, ${n} stream${n === 1 ? '' : 's'}`, run, bareBaseline(n), target));
      }
      const single = await measureCommands(embedded.client, { label: 'progress reports, 16 clients, one stream', connections: 16, shape: 'single', agreementIds: ['bench-single'], durationS: s.durationS, warmupS: 0 }, progress);
      rows.push(throughputRow('commands', 'progress reports, 16 clients, one stream', single, bareBaseline(16)));
      const rawBaseline = { name: 'raw SQLite append, one transaction + fsync per event', value: raw!.eventsPerSecond, unit: 'events/s' };
      for (const n of [1, 16] as const) {
        rows.push(throughputRow('commands', `progress reports, ${clients(n)}, vs raw SQLite`, runs.get(n)!, rawBaseline, {
          ratioNote: 'commands/s / raw appends/s; above 1 when concurrent commands share one fsync (group commit)',
          details: { rawEvents: raw!.events, rawSeconds: raw!.seconds },
        }));
      }
    }
    if (want.has('lag')) {
      progress(`append -> visible, embedded: ${s.lagSamples} commands, one at a time`);
      const lag = await measureLag(embedded.client, 'bench-lag', s.lagSamples);
      progress(`  embedded lag: p50 ${lag.lag.p50Ms.toFixed(2)} ms, p99 ${lag.lag.p99Ms.toFixed(2)} ms${lag.failures ? `, ${lag.failures} failures (${lag.failureSample})` : ''}`);
      rows.push(...lagRows('embedded (in-memory read models)', lag, bareGet, true));
      progress(`append -> SSE event, embedded: ${s.lagSamples} commands, one at a time`);
      const feed = await measureFeedLatency(embedded.client, 'bench-lag', s.lagSamples);
      progress(`  feed latency: p50 ${feed.feed.p50Ms.toFixed(2)} ms, p99 ${feed.feed.p99Ms.toFixed(2)} ms${feed.failures ? `, ${feed.failures} failures` : ''}`);
      const feedDetails = { samples: feed.feed.samples, failures: feed.failures, feed: feed.feed, bareGet };
      rows.push(
        latencyRow('lag', 'append -> SSE event (GET /v1/events stream), embedded, p50', feed.feed.p50Ms, { name: 'bare Fastify GET round trip, p50', value: bareGet.p50Ms }, { details: feedDetails }),
        latencyRow('lag', 'append -> SSE event (GET /v1/events stream), embedded, p99', feed.feed.p99Ms, { name: 'bare Fastify GET round trip, p99', value: bareGet.p99Ms }, { details: feedDetails }),
      );
    }
    reportProblems(embedded.service);
    if (!keyed) await embedded.stop.now();
  }

  // ---- 4. Auth: run (b), API key on every request and a rate limiter active but never reached,
  // against run (a), AUTH=off RATE_LIMIT=off, in the order a b b a so that a load that drifts
  // during the run (other work on the machine) weighs on both sides alike.
  if (keyed && embedded && authOff) {
    const label = 'progress reports, 16 clients, 16 streams';
    const b1 = await measureCommands(keyed.client, { label: `${label}, API key + rate limiter (b1)`, connections: 16, shape: 'multi', agreementIds: keyed.ids, durationS: s.durationS, warmupS: s.warmupS }, progress);
    const b2 = await measureCommands(keyed.client, { label: `${label}, API key + rate limiter (b2)`, connections: 16, shape: 'multi', agreementIds: keyed.ids, durationS: s.durationS, warmupS: 0 }, progress);
    const a2 = await measureCommands(embedded.client, { label: `${label}, AUTH=off RATE_LIMIT=off (a2)`, connections: 16, shape: 'multi', agreementIds: idsFor(16), durationS: s.durationS, warmupS: 0 }, progress);
    reportProblems(keyed.service);
    await keyed.stop.now();
    await embedded.stop.now();
    const mean = (xs: CommandRun[]) => xs.reduce((sum, x) => sum + x.requestsPerSecond, 0) / xs.length;
    const b = [b1, b2];
    const a = [authOff, a2];
    const consistent = [...a, ...b].every((x) => x.verification.consistent);
    rows.push({
      group: 'auth',
      name: 'progress reports, 16 clients, API key (editor) + rate limiter',
      value: mean(b),
      unit: 'commands/s',
      baseline: { name: 'the same, AUTH=off RATE_LIMIT=off', value: mean(a), unit: 'commands/s' },
      ratio: mean(b) / mean(a),
      ratioNote: 'with keys / without (b/a), each the mean of two runs in the order a b b a',
      details: {
        authEnforced: keyed.authEnforced, rateLimiterActive: keyed.rateLimiterActive, anonymousStatus: keyed.anonymousStatus,
        runsA: a.map((x) => Math.round(x.requestsPerSecond)), runsB: b.map((x) => Math.round(x.requestsPerSecond)),
        latencyP99MsA: a.map((x) => x.latencyP99Ms), latencyP99MsB: b.map((x) => x.latencyP99Ms),
        non2xxB: b.map((x) => x.non2xx), auditConsistent: consistent, ...(consistent ? {} : { audit: [...a, ...b].map((x) => x.verification) }),
      },
    });
  }

  // ---- 5. Lag with Redis: api and projector as separate processes on one log.
  if (redisPair) {
    progress(`append -> visible, Redis: ${s.redisLagSamples} commands, one at a time`);
    const lag = await measureLag(redisPair.api.client, 'bench-lag', s.redisLagSamples);
    progress(`  Redis lag: p50 ${lag.lag.p50Ms.toFixed(2)} ms, p99 ${lag.lag.p99Ms.toFixed(2)} ms${lag.failures ? `, ${lag.failures} failures (${lag.failureSample})` : ''}`);
    rows.push(...lagRows('Redis (api and projector in separate processes)', lag, bareGet, false));
    reportProblems(redisPair.api.service);
    reportProblems(redisPair.projector.service);
    await redisPair.api.stop.now();
    await redisPair.projector.stop.now();
    await redisPair.dropNamespace.now();
  }

  // ---- 6. Queries at 10,000 and 100,000 commitments, one client, sequential.
  for (const q of queryServices ?? []) {
    const size = q.dataset.commitments;
    const bareGetName = 'bare Fastify GET route, one client';
    for (const [label, urlPath, target] of [
      ['commitment list (status=delayed, sector=health, limit=50)', LIST_QUERY, true],
      ['commitment list (overdue=true, limit=50)', OVERDUE_QUERY, false],
      ['dashboard', DASHBOARD_QUERY, false],
    ] as const) {
      progress(`GET ${urlPath} at ${sizeText(size)} commitments, one client, ${s.latencyS} s`);
      const m = await measureLatency(q.service.base, urlPath, s.latencyS);
      const total = (JSON.parse(m.body) as { total?: unknown }).total;
      progress(`  p50 ${m.p50Ms.toFixed(2)} ms, p99 ${m.p99Ms.toFixed(2)} ms (${m.samples} requests${typeof total === 'number' ? `, ${total} matches` : ''})`);
      const details = { samples: m.samples, p50Ms: m.p50Ms, p99Ms: m.p99Ms, meanMs: m.meanMs, maxMs: m.maxMs, matches: total, commitments: size, events: q.dataset.events, bareGet };
      const name = `${label}, ${sizeText(size)} commitments`;
      if (urlPath !== OVERDUE_QUERY) rows.push(latencyRow('queries', `${name}, p50`, m.p50Ms, { name: `${bareGetName}, p50`, value: bareGet.p50Ms }, { details }));
      rows.push(latencyRow('queries', `${name}, p99`, m.p99Ms, { name: `${bareGetName}, p99`, value: bareGet.p99Ms }, {
        details,
        ...(target && size === 100_000 ? { target: { text: `p99 < ${LIST_P99_TARGET_MS} ms`, met: m.p99Ms < LIST_P99_TARGET_MS } } : {}),
      }));
    }
    reportProblems(q.service);
    await q.stop.now();
  }

  // In the order of HTTP_GROUPS, whatever order the phases ran in.
  return [...rows].sort((a, b) => HTTP_GROUPS.indexOf(a.group as HttpGroup) - HTTP_GROUPS.indexOf(b.group as HttpGroup));
}

const clients = (n: number) => `${n} client${n === 1 ? '' : 's'}`;

function lagRows(where: string, lag: LagRun, bareGet: LatencyStats, withTarget: boolean): BenchRow[] {
  const details = { samples: lag.lag.samples, failures: lag.failures, failureSample: lag.failureSample, lag: lag.lag, commandRoundTrip: lag.command, sendToVisible: lag.sendToVisible, bareGet };
  return [
    latencyRow('lag', `append -> visible, ${where}, p50`, lag.lag.p50Ms, { name: 'bare Fastify GET round trip, p50', value: bareGet.p50Ms }, { details }),
    latencyRow('lag', `append -> visible, ${where}, p99`, lag.lag.p99Ms, { name: 'bare Fastify GET round trip, p99', value: bareGet.p99Ms }, {
      details,
      ...(withTarget ? { target: { text: `p99 < ${LAG_P99_TARGET_MS} ms`, met: lag.failures === 0 && lag.lag.p99Ms < LAG_P99_TARGET_MS } } : {}),
    }),
  ];
}

/** Like Promise.all, but settles only when every promise has (nothing still starting when the cleanups run). */
async function allOrFirstError<T extends readonly unknown[]>(promises: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}
