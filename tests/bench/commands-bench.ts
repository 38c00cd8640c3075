// Command throughput benchmark (not a test: it prints figures and writes them to bench/results/).
//
//   pnpm bench                  10 s per scenario
//   pnpm bench --quick          3 s per scenario
//   pnpm bench --duration 20    20 s per scenario
//   pnpm bench --connections 32 (default 16)
//
// Three scenarios, each served by a child process on a free loopback port so the server never
// shares an event loop with autocannon:
//   bare          a bare Fastify 5 app, one POST route answering {ok:true}: the ceiling of this
//                 machine's HTTP stack, against which the service is compared;
//   single-stream the real service (services/api/src/main.ts, fresh DATA_DIR): progress reports
//                 rotating over the 200 commitments of ONE agreement, so every command hits the
//                 same stream (optimistic concurrency, conflict retries);
//   multi-stream  the same service: each connection reports progress on its own agreement
//                 (16 agreements of 200 commitments), so commands hit 16 streams.
// After each service scenario the log is audited against the answers, so the figure counts durable
// commands and nothing else: every 2xx answer must name an event (agreement, revision) that carries
// the request's own correlation id and payload; the only other events allowed are those of requests
// still in flight when autocannon closed its sockets (the server completes them; nobody hears it).
// Results: bench/results/commands-<ISO timestamp, ':' and '.' as '-'>.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import type { Client, Instance, Options, Request as LoadRequest, Result } from 'autocannon';

const HOST = '127.0.0.1';
const COMMITMENTS = 200;
const PROGRESS_ROUTE = '/v1/agreements/:id/commitments/:cid/progress';
const BENCH_FILE = fileURLToPath(import.meta.url);
const REPO_ROOT = path.resolve(path.dirname(BENCH_FILE), '..', '..');

// ---------------------------------------------------------------------------------------------
// The bare server, when this file is started as the child `--serve-bare`.
// ---------------------------------------------------------------------------------------------

async function serveBare(): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.post('/bench', async () => ({ ok: true }));
  const port = Number(process.env['PORT']);
  await app.listen({ port, host: HOST });
  const stop = () => {
    void app.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent holds our stdin: when it goes away (even killed hard), so do we.
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

type Settings = { durationS: number; warmupS: number; connections: number; quick: boolean };

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: pnpm bench [--quick] [--duration <seconds>] [--connections <n>]\n`);
  process.exit(2);
}

function parseArgs(argv: string[]): Settings {
  let durationS = 10;
  let connections = 16;
  let quick = false;
  let durationGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        quick = true;
        break;
      case '--duration': {
        durationS = Number(value());
        durationGiven = true;
        if (!Number.isInteger(durationS) || durationS < 1 || durationS > 600) usage('--duration must be a whole number of seconds, 1-600');
        break;
      }
      case '--connections': {
        connections = Number(value());
        if (!Number.isInteger(connections) || connections < 1 || connections > 256) usage('--connections must be a whole number, 1-256');
        break;
      }
      case '--':
        break;
      default:
        usage(`unknown argument ${arg}`);
    }
  }
  if (quick && !durationGiven) durationS = 3;
  // A short unrecorded warm-up per server lets the JIT settle before the measured run.
  const warmupS = Math.max(1, Math.min(3, Math.round(durationS / 5)));
  return { durationS, warmupS, connections, quick };
}

// ---------------------------------------------------------------------------------------------
// Child processes: started on loopback, always stopped (end, error, Ctrl-C)
// ---------------------------------------------------------------------------------------------

type Child = { name: string; proc: ChildProcess; tail: string[]; exited: Promise<void> };
const children = new Set<Child>();

const alive = (c: Child) => c.proc.exitCode === null && c.proc.signalCode === null;

function startChild(name: string, args: string[], env: NodeJS.ProcessEnv): Child {
  // `node --import tsx` (not the tsx CLI, which forks again) so the pid we hold is the server's.
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      tail.push(line);
      if (tail.length > 100) tail.shift();
    }
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  proc.stdin?.on('error', () => undefined);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const child: Child = { name, proc, tail, exited };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

async function stopChild(c: Child): Promise<void> {
  if (alive(c)) {
    c.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (alive(c)) c.proc.kill('SIGKILL');
    }, 5000);
    await c.exited;
    clearTimeout(timer);
  }
  children.delete(c);
}

async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map(stopChild));
}

process.on('exit', () => {
  // Last resort: nothing this script started outlives it.
  for (const c of children) if (alive(c)) c.proc.kill('SIGKILL');
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(child: Child, url: string, method: 'GET' | 'POST', timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!alive(child)) throw new Error(`${child.name} exited (${child.proc.exitCode ?? child.proc.signalCode}) before it was ready:\n${child.tail.slice(-20).join('\n')}`);
    try {
      const res = await fetch(url, { method, signal: AbortSignal.timeout(2000), ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms (${last}):\n${child.tail.slice(-20).join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers against the service
// ---------------------------------------------------------------------------------------------

async function call(base: string, method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    signal: AbortSignal.timeout(15_000),
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

const commitmentId = (n: number) => `c-${String(n).padStart(3, '0')}`;

async function createAgreement(base: string, id: string): Promise<void> {
  const commitments = Array.from({ length: COMMITMENTS }, (_, n) => ({
    id: commitmentId(n),
    title: `Benchmark commitment ${n}`,
    dueDate: '2027-06-30',
    responsible: { party: n % 2 === 0 ? 'VEN' : 'RUS', institution: 'Ministry of Health' },
  }));
  const res = await call(base, 'POST', '/v1/agreements', {
    id,
    title: `Benchmark agreement ${id}`,
    kind: 'agreement',
    sector: 'health',
    parties: ['VEN', 'RUS'],
    signedAt: '2025-11-28',
    session: { name: 'CIAN XIX', date: '2025-11-28' },
    commitments,
  });
  if (res.status !== 201) throw new Error(`creating agreement ${id}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
}

/** The log's revision of the agreement stream (history endpoint), and the read model's (ETag). */
async function revisions(base: string, id: string): Promise<{ log: number; readModel: number }> {
  const h = await call(base, 'GET', `/v1/agreements/${id}/history?limit=1`);
  const log = (h.json as { revision?: unknown } | null)?.revision;
  if (h.status !== 200 || typeof log !== 'number') throw new Error(`history of ${id}: HTTP ${h.status} ${JSON.stringify(h.json)}`);
  const a = await call(base, 'GET', `/v1/agreements/${id}`);
  const readModel = (a.json as { revision?: unknown } | null)?.revision;
  if (a.status !== 200 || typeof readModel !== 'number') throw new Error(`agreement ${id}: HTTP ${a.status}`);
  return { log, readModel };
}

async function totalLogRevisions(base: string, ids: string[]): Promise<number> {
  let sum = 0;
  for (const id of ids) {
    const h = await call(base, 'GET', `/v1/agreements/${id}/history?limit=1`);
    const r = (h.json as { revision?: unknown } | null)?.revision;
    if (h.status !== 200 || typeof r !== 'number') throw new Error(`history of ${id}: HTTP ${h.status}`);
    sum += r;
  }
  return sum;
}

/**
 * Server-side answers of the progress route by status class, from GET /metrics; null when the
 * service does not count that route (its counting hook is encapsulated in the operations plugin).
 */
async function progressAnswers(base: string): Promise<{ ok2xx: number; other: number } | null> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let ok2xx = 0;
  let other = 0;
  let seen = false;
  const pattern = /^cm_http_requests_total\{method="POST",route="([^"]*)",status="(\d+)"\} (\d+)$/gm;
  for (const m of text.matchAll(pattern)) {
    if (m[1] !== PROGRESS_ROUTE) continue;
    seen = true;
    const n = Number(m[3]);
    if (m[2]!.startsWith('2')) ok2xx += n;
    else other += n;
  }
  return seen ? { ok2xx, other } : null;
}

/** Waits until the commands cut off when autocannon stopped have finished and the read models caught up. */
async function waitQuiescent(base: string, ids: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  let previous = -2;
  while (Date.now() < deadline) {
    const now = await totalLogRevisions(base, ids);
    const ready = await call(base, 'GET', '/ready');
    if (now === previous && ready.status === 200) return;
    previous = now;
    await sleep(300);
  }
  throw new Error('the service did not settle within 15 s after the load stopped');
}

// ---------------------------------------------------------------------------------------------
// Load runs
// ---------------------------------------------------------------------------------------------

let currentLoad: Instance | null = null;

type LoadRun = { result: Result; perSecond: number[]; sent: number; answered: number };

function runLoad(label: string, options: Options, durationS: number): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const perSecond: number[] = [];
    let thisSecond = 0;
    let non2xx = 0;
    // Our own count of requests written and answers parsed: what was cut off in flight at stop
    // (autocannon's `requests.sent` also counts one phantom request per connection).
    let sent = 0;
    let answeredCount = 0;
    const setupClient = (client: Client) => {
      options.setupClient?.(client);
      const emitter: NodeJS.EventEmitter = client; // 'request' is emitted, though not in @types/autocannon
      emitter.on('request', () => sent++);
      client.on('response', () => answeredCount++);
    };
    const instance = autocannon({ ...options, setupClient, duration: durationS }, (err: unknown, result: Result) => {
      clearInterval(ticker);
      currentLoad = null;
      if (!err) log(`  [${label}] done: ${result.requests.total} answers in ${result.duration} s, ${result.requests.mean.toFixed(0)} req/s mean`);
      if (err) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve({ result, perSecond, sent, answered: answeredCount });
    });
    currentLoad = instance;
    instance.on('response', (_client: Client, statusCode: number) => {
      thisSecond++;
      if (statusCode < 200 || statusCode >= 300) non2xx++;
    });
    const ticker = setInterval(() => {
      perSecond.push(thisSecond);
      const elapsed = Math.min(durationS, Math.round((Date.now() - started) / 1000));
      log(`  [${label}] ${String(elapsed).padStart(3)}/${durationS} s  ${String(thisSecond).padStart(6)} req/s${non2xx > 0 ? `  non-2xx so far: ${non2xx}` : ''}`);
      thisSecond = 0;
    }, 1000);
  });
}

const jsonHeaders = { 'content-type': 'application/json' };

/**
 * What a measured run sent and what its 2xx answers claimed, to audit against the log: every
 * request carries a unique `x-correlation-id` (the service stores it in the event's metadata),
 * every 2xx answer names the agreement and the revision its event got.
 */
type Audit = {
  /** correlation id -> the request's agreement, commitment and percent */
  sent: Map<string, { agreementId: string; commitmentId: string; percent: number }>;
  /** `${agreementId}@${revision}` of each 2xx answer, with how many answers claimed it */
  answers: Map<string, number>;
  unreadable2xx: number;
};

const newAudit = (): Audit => ({ sent: new Map(), answers: new Map(), unreadable2xx: 0 });

/** One progress-report request template rotating over the commitments of `agreementId`. */
function progressRequest(agreementId: string, correlationPrefix: string, next: () => number, audit: Audit | null): LoadRequest {
  const request: LoadRequest = {
    method: 'POST',
    path: `/v1/agreements/${agreementId}/commitments/${commitmentId(0)}/progress`,
    headers: jsonHeaders,
    setupRequest: (req: LoadRequest) => {
      const n = next();
      const cid = commitmentId(n % COMMITMENTS);
      const percent = Math.floor(n / COMMITMENTS) % 101;
      const correlationId = `${correlationPrefix}-${n}`;
      audit?.sent.set(correlationId, { agreementId, commitmentId: cid, percent });
      return {
        ...req,
        path: `/v1/agreements/${agreementId}/commitments/${cid}/progress`,
        headers: { ...req.headers, 'x-correlation-id': correlationId },
        body: JSON.stringify({ percent }),
      };
    },
  };
  if (audit) {
    request.onResponse = (status: number, body: string) => {
      if (status < 200 || status >= 300) return;
      try {
        const answer = JSON.parse(body) as { agreementId?: unknown; revision?: unknown };
        if (typeof answer.agreementId !== 'string' || typeof answer.revision !== 'number') throw new Error('no revision');
        const key = `${answer.agreementId}@${answer.revision}`;
        audit.answers.set(key, (audit.answers.get(key) ?? 0) + 1);
      } catch {
        audit.unreadable2xx++;
      }
    };
  }
  return request;
}

/** Every connection on one agreement, one shared counter: concurrent commands hit one stream. */
function singleStreamRequests(agreementId: string, audit: Audit | null): LoadRequest[] {
  let k = 0;
  return [progressRequest(agreementId, `bench-${agreementId}`, () => k++, audit)];
}

/** Each connection gets its own agreement (in turn), and rotates over its commitments. */
function multiStreamClientSetup(agreementIds: string[], audit: Audit | null): (client: Client) => void {
  let nextClient = 0;
  return (client: Client) => {
    const agreementId = agreementIds[nextClient++ % agreementIds.length]!;
    let k = 0;
    client.setRequests([progressRequest(agreementId, `bench-${agreementId}`, () => k++, audit)]);
  };
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

type Verification = {
  agreements: number;
  /** Events the benchmarked streams gained during the run. */
  eventsAppended: number;
  /** 2xx answers autocannon received. */
  client2xx: number;
  /** 2xx answers whose (agreement, revision) is an event of the run carrying that request's correlation id and payload. */
  answersMatchedToEvents: number;
  /** 2xx answers naming a revision that is not an event of this run (or named twice). */
  answersWithoutEvent: number;
  unreadable2xx: number;
  /** Events appended by requests autocannon never saw answered (in flight when it closed its sockets). */
  eventsOfUnansweredRequests: number;
  /** Requests written but never answered: the in-flight ones at stop, plus timeouts. */
  unansweredRequests: number;
  /** Events with no request of this run behind them, another type, or another payload. */
  foreignEvents: number;
  /** Requests appended more than once. */
  duplicatedRequests: number;
  /** null: GET /metrics does not count the progress route. */
  server2xx: number | null;
  readModelsMatchLog: boolean;
  consistent: boolean;
};

type Scenario = {
  name: string;
  description: string;
  connections: number;
  durationS: number;
  requestsPerSecondMean: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  ratioToBare: number | null;
  perSecond: number[];
  verification: Verification | null;
  streamLengthsAtStart: number[] | null;
  streamLengthsAtEnd: number[] | null;
  raw: Result;
};

function scenarioOf(name: string, description: string, run: LoadRun, durationS: number, bareRps: number | null): Scenario {
  const r = run.result;
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
  return {
    name,
    description,
    connections: r.connections,
    durationS,
    requestsPerSecondMean: r.requests.mean,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    non2xx: r.non2xx,
    statusCodes,
    errors: r.errors,
    timeouts: r.timeouts,
    ratioToBare: bareRps && bareRps > 0 ? r.requests.mean / bareRps : null,
    perSecond: run.perSecond,
    verification: null,
    streamLengthsAtStart: null,
    streamLengthsAtEnd: null,
    raw: r,
  };
}

function printTable(rows: Scenario[]): void {
  const header = ['scenario', 'conns', 'req/s (mean)', 'p50 ms', 'p99 ms', 'non-2xx', 'vs bare'];
  const body = rows.map((s) => [
    s.name,
    String(s.connections),
    s.requestsPerSecondMean.toFixed(0),
    s.latencyP50Ms.toFixed(1),
    s.latencyP99Ms.toFixed(1),
    String(s.non2xx),
    s.ratioToBare === null ? '1.00x' : `${s.ratioToBare.toFixed(s.ratioToBare < 0.1 ? 3 : 2)}x`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  log('');
  log(line(header));
  log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of body) log(line(r));
  log('');
}

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The file system the data folder lives on (fsync cost differs enormously between tmpfs, ext4, overlay...). */
function fileSystemOf(dir: string): string {
  try {
    const real = realpathSync(dir);
    let best = { mount: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (!mount || !type) continue;
      if ((real === mount || real.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length >= best.mount.length) best = { mount, type };
    }
    return `${best.type} (mounted at ${best.mount})`;
  } catch {
    return 'unknown';
  }
}

function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
    totalMemoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    osRelease: os.release(),
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

type HistoryEvent = { revision: number; type: string; correlationId?: string; data: { commitmentId?: string; percent?: number } };

async function historySince(base: string, id: string, fromRevision: number): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let from: number | null = fromRevision;
  while (from !== null) {
    const h = await call(base, 'GET', `/v1/agreements/${id}/history?fromRevision=${from}&limit=1000`);
    const page = h.json as { events?: HistoryEvent[]; nextFromRevision?: number | null } | null;
    if (h.status !== 200 || !page?.events) throw new Error(`history of ${id}: HTTP ${h.status}`);
    events.push(...page.events);
    from = page.nextFromRevision ?? null;
  }
  return events;
}

async function logHeads(base: string, ids: string[]): Promise<Map<string, number>> {
  const heads = new Map<string, number>();
  for (const id of ids) heads.set(id, (await revisions(base, id)).log);
  return heads;
}

async function verifyRun(base: string, before: Map<string, number>, run: LoadRun, audit: Audit, metricsBefore: { ok2xx: number } | null): Promise<Verification> {
  const ids = [...before.keys()];
  await waitQuiescent(base, ids);
  let eventsAppended = 0;
  let answersMatchedToEvents = 0;
  let eventsOfUnansweredRequests = 0;
  let foreignEvents = 0;
  let duplicatedRequests = 0;
  let readModelsMatchLog = true;
  const seen = new Set<string>();
  const answersLeft = new Map(audit.answers);
  for (const id of ids) {
    const rev = await revisions(base, id);
    if (rev.log !== rev.readModel) readModelsMatchLog = false;
    for (const e of await historySince(base, id, before.get(id)! + 1)) {
      eventsAppended++;
      const req = e.correlationId === undefined ? undefined : audit.sent.get(e.correlationId);
      if (!req || e.type !== 'ProgressReported' || req.agreementId !== id || e.data.commitmentId !== req.commitmentId || e.data.percent !== req.percent) {
        foreignEvents++;
        continue;
      }
      if (seen.has(e.correlationId!)) duplicatedRequests++;
      seen.add(e.correlationId!);
      const key = `${id}@${e.revision}`;
      const claims = answersLeft.get(key) ?? 0;
      if (claims > 0) {
        answersMatchedToEvents++;
        if (claims === 1) answersLeft.delete(key);
        else answersLeft.set(key, claims - 1);
      } else {
        eventsOfUnansweredRequests++;
      }
    }
  }
  let answersWithoutEvent = 0;
  for (const n of answersLeft.values()) answersWithoutEvent += n;
  const metrics = await progressAnswers(base);
  const server2xx = metrics ? metrics.ok2xx - (metricsBefore?.ok2xx ?? 0) : null;
  const client2xx = run.result['2xx'];
  const unansweredRequests = Math.max(0, run.sent - run.answered);
  const consistent = answersMatchedToEvents === client2xx && answersWithoutEvent === 0 && audit.unreadable2xx === 0 && foreignEvents === 0 &&
    duplicatedRequests === 0 && eventsOfUnansweredRequests <= unansweredRequests && (server2xx === null || server2xx === eventsAppended) && readModelsMatchLog;
  return {
    agreements: ids.length, eventsAppended, client2xx, answersMatchedToEvents, answersWithoutEvent, unreadable2xx: audit.unreadable2xx,
    eventsOfUnansweredRequests, unansweredRequests, foreignEvents, duplicatedRequests, server2xx, readModelsMatchLog, consistent,
  };
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const { durationS, warmupS, connections } = settings;
  const startedAt = new Date();
  // Bounded in time: two servers to start, two warm-ups, three measured runs, the audits.
  const budgetMs = (3 * (durationS + warmupS) + 180) * 1000;
  const watchdog = setTimeout(() => {
    log(`benchmark exceeded its time budget of ${Math.round(budgetMs / 1000)} s: stopping`);
    void shutdown(1);
  }, budgetMs);
  watchdog.unref();

  const m = machine();
  log(`commands benchmark: ${connections} connections, ${durationS} s per scenario (+${warmupS} s unrecorded warm-up), loopback only`);
  log(`machine: ${m.cpuCount} x ${m.cpuModel}, ${m.totalMemoryGiB} GiB, node ${m.node}, ${m.platform}/${m.arch}`);

  const scenarios: Scenario[] = [];

  // 1. Bare Fastify
  const barePort = await freePort();
  log(`\n[bare] starting a bare Fastify app on ${HOST}:${barePort}`);
  const bare = startChild('bare fastify', [BENCH_FILE, '--serve-bare'], { ...process.env, PORT: String(barePort) });
  const bareBase = `http://${HOST}:${barePort}`;
  await waitFor(bare, `${bareBase}/bench`, 'POST', 30_000);
  const bareOptions: Options = {
    url: `${bareBase}/bench`,
    connections,
    method: 'POST',
    headers: jsonHeaders,
    body: JSON.stringify({ percent: 42 }),
  };
  log(`[bare] warm-up ${warmupS} s`);
  await runLoad('bare warm-up', bareOptions, warmupS);
  log(`[bare] measuring ${durationS} s`);
  const bareRun = await runLoad('bare', bareOptions, durationS);
  const bareRps = bareRun.result.requests.mean;
  scenarios.push(scenarioOf('bare fastify', 'bare Fastify 5, one POST route answering {ok:true}', bareRun, durationS, null));
  await stopChild(bare);

  // 2. The real service
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'cm-bench-'));
  tempDirs.push(dataDir);
  const dataFs = fileSystemOf(dataDir);
  const port = await freePort();
  log(`\n[service] starting services/api/src/main.ts on ${HOST}:${port}, DATA_DIR=${dataDir} (${dataFs})`);
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), HOST, DATA_DIR: dataDir, LOG_LEVEL: 'warn', ROLES: 'api,projector' };
  for (const k of ['EVENT_STORE_URL', 'REDIS_URL', 'SMTP_URL', 'API_KEYS_FILE', 'AUTH', 'PUBLIC_URL', 'BODY_LIMIT']) delete env[k];
  const service = startChild('service', ['services/api/src/main.ts'], env);
  const base = `http://${HOST}:${port}`;
  await waitFor(service, `${base}/ready`, 'GET', 60_000);

  const warmupId = 'bench-warmup';
  const singleId = 'bench-single';
  const multiIds = Array.from({ length: connections }, (_, i) => `bench-multi-${String(i).padStart(2, '0')}`);
  log(`[service] creating ${2 + multiIds.length} agreements of ${COMMITMENTS} commitments (c-000..c-${COMMITMENTS - 1})`);
  for (const id of [warmupId, singleId, ...multiIds]) await createAgreement(base, id);

  const serviceOptions = (requests: LoadRequest[] | undefined, setupClient?: (c: Client) => void): Options => ({
    url: base,
    connections,
    method: 'POST',
    headers: jsonHeaders,
    ...(requests ? { requests } : {}),
    ...(setupClient ? { setupClient, requests: [{ method: 'POST', path: '/placeholder', headers: jsonHeaders }] } : {}),
  });

  log(`[service] warm-up ${warmupS} s (on its own agreement, not counted)`);
  await runLoad('service warm-up', serviceOptions(singleStreamRequests(warmupId, null)), warmupS);
  await waitQuiescent(base, [warmupId]);

  const measure = async (name: string, description: string, ids: string[], options: (audit: Audit) => Options) => {
    const before = await logHeads(base, ids);
    const metricsBefore = await progressAnswers(base);
    const audit = newAudit();
    log(`[${name}] measuring ${durationS} s: ${description}`);
    const run = await runLoad(name, options(audit), durationS);
    const s = scenarioOf(name, description, run, durationS, bareRps);
    log(`  [${name}] auditing the log against the answers`);
    s.verification = await verifyRun(base, before, run, audit, metricsBefore);
    s.streamLengthsAtStart = [...before.values()].map((r) => r + 1);
    s.streamLengthsAtEnd = [...(await logHeads(base, ids)).values()].map((r) => r + 1);
    scenarios.push(s);
  };

  // 2a. One stream: every connection on the same agreement.
  await measure('single-stream', `progress reports, ${connections} connections on one agreement stream, rotating over its ${COMMITMENTS} commitments`,
    [singleId], (audit) => serviceOptions(singleStreamRequests(singleId, audit)));
  // 2b. One stream per connection.
  await measure('multi-stream', `progress reports, ${connections} connections each on its own agreement stream (${multiIds.length} agreements)`,
    multiIds, (audit) => serviceOptions(undefined, multiStreamClientSetup(multiIds, audit)));

  const serviceTail = service.tail.slice(-20);
  await stopChild(service);

  // Report
  printTable(scenarios);
  let allConsistent = true;
  for (const s of scenarios) {
    if (!s.verification) continue;
    const v = s.verification;
    allConsistent &&= v.consistent;
    log(`${s.name}: ${v.client2xx} 2xx answers, ${v.eventsAppended} events appended to ${v.agreements} stream(s) -> ${v.consistent ? 'OK' : 'MISMATCH'}`);
    log(`  ${v.answersMatchedToEvents} answers matched to their event (revision, correlation id, payload); ${v.answersWithoutEvent} answers without an event; ` +
      `${v.eventsOfUnansweredRequests} events from requests in flight when the load stopped (${v.unansweredRequests} unanswered); ` +
      `${v.foreignEvents} foreign, ${v.duplicatedRequests} duplicated; read models ${v.readModelsMatchLog ? 'at' : 'NOT at'} the log's revision; ` +
      `server-side 2xx ${v.server2xx === null ? 'not available (/metrics does not count this route)' : v.server2xx}`);
    const codes = Object.entries(s.statusCodes).filter(([c]) => !c.startsWith('2'));
    if (codes.length > 0 || s.errors > 0) log(`  non-2xx: ${codes.map(([c, n]) => `${n} x ${c}`).join(', ') || 'none'}; connection errors ${s.errors} (timeouts ${s.timeouts})`);
    const lengths = (xs: number[] | null) => (xs && xs.length > 0 ? (Math.min(...xs) === Math.max(...xs) ? `${xs[0]}` : `${Math.min(...xs)}-${Math.max(...xs)}`) : '?');
    log(`  stream length: ${lengths(s.streamLengthsAtStart)} events before, ${lengths(s.streamLengthsAtEnd)} after` +
      `${s.perSecond.length > 1 ? `; req/s by second: ${s.perSecond.join(' ')}` : ''}`);
  }
  const single = scenarios.find((s) => s.name === 'single-stream');
  const multi = scenarios.find((s) => s.name === 'multi-stream');
  if (single && multi && single.requestsPerSecondMean > 0) {
    log(`multi-stream / single-stream: ${(multi.requestsPerSecondMean / single.requestsPerSecondMean).toFixed(2)}x`);
  }
  const warnings = serviceTail.filter((l) => /"level":(40|50|60)/.test(l) && !/reminders role/.test(l));
  if (warnings.length > 0) log(`service warnings/errors (last ${warnings.length}):\n${warnings.join('\n')}`);

  const resultsDir = path.join(REPO_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = path.join(resultsDir, `commands-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify({
    benchmark: 'commands',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: m,
    settings: { ...settings, host: HOST, commitmentsPerAgreement: COMMITMENTS, dataDirFileSystem: dataFs, serviceLogLevel: 'warn' },
    allConsistent,
    scenarios,
  }, null, 2)}\n`);
  log(`results written to ${path.relative(REPO_ROOT, file)}`);
  if (!allConsistent) process.exitCode = 1;
}

const tempDirs: string[] = [];
let shuttingDown = false;

async function shutdown(code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  try {
    currentLoad?.stop();
  } catch {
    // already stopped
  }
  await stopAllChildren();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

if (process.argv.includes('--serve-bare')) {
  serveBare().catch((err: unknown) => {
    process.stderr.write(`bare server failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
} else {
  process.on('SIGINT', () => {
    log('\ninterrupted: stopping the servers');
    void shutdown(130);
  });
  process.on('SIGTERM', () => void shutdown(143));
  main()
    .then(() => shutdown(process.exitCode === undefined ? 0 : Number(process.exitCode)))
    .catch(async (err: unknown) => {
      if (shuttingDown) return; // interrupted: the servers are going away under the run
      process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      await shutdown(1);
    });
}
