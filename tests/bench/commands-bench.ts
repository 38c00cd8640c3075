// Commands through HTTP under load, and the audit that makes the figure honest. Used by
// http-suite.ts (`pnpm bench`); it starts nothing itself.
//
// Load comes from autocannon in the runner's process; servers are child processes, so they
// never share an event loop with it. Two shapes of load on the progress route:
//   single stream  every connection reports progress on the commitments of ONE agreement, so
//                  commands contend on one stream (optimistic concurrency, conflict retries);
//   multi stream   each connection on its own agreement, so N connections hit N streams.
// After each measured run the log is audited against the answers, so the figure counts durable
// commands and nothing else: every 2xx answer must name an event (agreement, revision) that
// carries the request's own correlation id and payload; the only other events allowed are those
// of requests still in flight when autocannon closed its sockets (the server completes them;
// nobody hears it).
import autocannon from 'autocannon';
import type { Client, Options, Request as LoadRequest, Result } from 'autocannon';
import { onCleanup, sleep } from './bench-processes.js';

/** Commitments per benchmark agreement; every one has VEN responsible, so a VEN editor key may report on all. */
export const COMMITMENTS = 50;
const PROGRESS_ROUTE = '/v1/agreements/:id/commitments/:cid/progress';
const jsonHeaders = { 'content-type': 'application/json' };

/**
 * Where commands go and with which credentials: `headers` on every request of the load and the
 * setup, `auditHeaders` on the audit's reads of the history (an audit route).
 */
export type ServiceClient = { base: string; headers: Record<string, string>; auditHeaders: Record<string, string> };

// ---------------------------------------------------------------------------------------------
// HTTP helpers against the service
// ---------------------------------------------------------------------------------------------

export async function call(
  base: string, headers: Record<string, string>, method: 'GET' | 'POST', urlPath: string, body?: unknown,
): Promise<{ status: number; json: unknown; headers: Headers }> {
  const res = await fetch(`${base}${urlPath}`, {
    method,
    signal: AbortSignal.timeout(15_000),
    headers: { ...headers, ...(body === undefined ? {} : jsonHeaders) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
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

export const commitmentId = (n: number) => `c-${String(n).padStart(3, '0')}`;

/** An agreement between VEN and RUS with COMMITMENTS commitments (c-000...), VEN responsible for all. */
export async function createAgreement(client: ServiceClient, id: string): Promise<{ position: string }> {
  const commitments = Array.from({ length: COMMITMENTS }, (_, n) => ({
    id: commitmentId(n),
    title: `Benchmark commitment ${n}`,
    dueDate: '2027-06-30',
    responsible: { party: 'VEN', institution: n % 2 === 0 ? 'Ministry of Health' : 'Ministry of Science' },
  }));
  const res = await call(client.base, client.headers, 'POST', '/v1/agreements', {
    id,
    title: `Benchmark agreement ${id}`,
    kind: 'agreement',
    sector: 'health',
    parties: ['VEN', 'RUS'],
    signedAt: '2025-11-28',
    session: { name: 'CIAN XIX', date: '2025-11-28' },
    commitments,
  });
  const position = (res.json as { position?: unknown } | null)?.position;
  if (res.status !== 201 || typeof position !== 'string') throw new Error(`creating agreement ${id}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
  return { position };
}

/** The log's revision of the agreement stream (history endpoint), and the read model's. */
async function revisions(client: ServiceClient, id: string): Promise<{ log: number; readModel: number }> {
  const h = await call(client.base, client.auditHeaders, 'GET', `/v1/agreements/${id}/history?limit=1`);
  const log = (h.json as { revision?: unknown } | null)?.revision;
  if (h.status !== 200 || typeof log !== 'number') throw new Error(`history of ${id}: HTTP ${h.status} ${JSON.stringify(h.json)}`);
  const a = await call(client.base, client.headers, 'GET', `/v1/agreements/${id}`);
  const readModel = (a.json as { revision?: unknown } | null)?.revision;
  if (a.status !== 200 || typeof readModel !== 'number') throw new Error(`agreement ${id}: HTTP ${a.status}`);
  return { log, readModel };
}

async function totalLogRevisions(client: ServiceClient, ids: string[]): Promise<number> {
  let sum = 0;
  for (const id of ids) {
    const h = await call(client.base, client.auditHeaders, 'GET', `/v1/agreements/${id}/history?limit=1`);
    const r = (h.json as { revision?: unknown } | null)?.revision;
    if (h.status !== 200 || typeof r !== 'number') throw new Error(`history of ${id}: HTTP ${h.status}`);
    sum += r;
  }
  return sum;
}

/**
 * Server-side answers of the progress route by status class, from GET /metrics; null when the
 * service does not count that route.
 */
async function progressAnswers(client: ServiceClient): Promise<{ ok2xx: number; other: number } | null> {
  const res = await fetch(`${client.base}/metrics`, { signal: AbortSignal.timeout(5000), headers: client.headers });
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
async function waitQuiescent(client: ServiceClient, ids: string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  let previous = -2;
  while (Date.now() < deadline) {
    const now = await totalLogRevisions(client, ids);
    const ready = await call(client.base, {}, 'GET', '/ready');
    if (now === previous && ready.status === 200) return;
    previous = now;
    await sleep(300);
  }
  throw new Error('the service did not settle within 15 s after the load stopped');
}

// ---------------------------------------------------------------------------------------------
// Load runs
// ---------------------------------------------------------------------------------------------

type LoadRun = { result: Result; perSecond: number[]; sent: number; answered: number };

/** What a load run measured, without autocannon's raw histograms. */
export type LoadSummary = {
  connections: number;
  durationS: number;
  requestsPerSecond: number;
  /** autocannon's latency histogram has whole-millisecond resolution. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  answers2xx: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  perSecond: number[];
};

function runLoad(label: string, options: Options, durationS: number, progress: (m: string) => void): Promise<LoadRun> {
  return new Promise((resolve, reject) => {
    const perSecond: number[] = [];
    let thisSecond = 0;
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
      stopOnInterrupt.drop();
      if (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const non2xx = result.non2xx > 0 ? `, ${result.non2xx} non-2xx` : '';
      progress(`  ${label}: ${result.requests.mean.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms${non2xx}`);
      resolve({ result, perSecond, sent, answered: answeredCount });
    });
    const stopOnInterrupt = onCleanup(`load ${label}`, () => instance.stop());
    instance.on('response', () => thisSecond++);
    const ticker = setInterval(() => {
      perSecond.push(thisSecond);
      thisSecond = 0;
    }, 1000);
  });
}

function summaryOf(run: LoadRun, durationS: number): LoadSummary {
  const r = run.result;
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(r.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
  return {
    connections: r.connections,
    durationS,
    requestsPerSecond: r.requests.mean,
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    answers2xx: r['2xx'],
    non2xx: r.non2xx,
    statusCodes,
    errors: r.errors,
    timeouts: r.timeouts,
    perSecond: run.perSecond,
  };
}

/** The bare server's POST route at `connections` clients, after an unrecorded warm-up. */
export async function measureBare(base: string, connections: number, durationS: number, warmupS: number, progress: (m: string) => void): Promise<LoadSummary> {
  const options: Options = { url: `${base}/bench`, connections, method: 'POST', headers: jsonHeaders, body: JSON.stringify({ percent: 42 }) };
  if (warmupS > 0) await runLoad(`bare POST warm-up, ${connections} clients`, options, warmupS, () => undefined);
  progress(`bare POST route, ${connections} clients, ${durationS} s`);
  return summaryOf(await runLoad(`bare POST, ${connections} clients`, options, durationS, progress), durationS);
}

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
function progressRequest(agreementId: string, correlationPrefix: string, next: () => number, headers: Record<string, string>, audit: Audit | null): LoadRequest {
  const request: LoadRequest = {
    method: 'POST',
    path: `/v1/agreements/${agreementId}/commitments/${commitmentId(0)}/progress`,
    headers: { ...headers, ...jsonHeaders },
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

/**
 * The load's shape: all connections on `agreementIds[0]` (single stream, one shared counter), or
 * each connection on its own agreement in turn (multi stream). Correlation ids carry `runTag` so
 * two runs on the same agreements never share one.
 */
function loadOptions(client: ServiceClient, connections: number, shape: 'single' | 'multi', agreementIds: string[], runTag: string, audit: Audit | null): Options {
  const base: Options = { url: client.base, connections, method: 'POST', headers: { ...client.headers, ...jsonHeaders } };
  if (shape === 'single') {
    let k = 0;
    const id = agreementIds[0]!;
    return { ...base, requests: [progressRequest(id, `${runTag}-${id}`, () => k++, client.headers, audit)] };
  }
  let nextClient = 0;
  return {
    ...base,
    requests: [{ method: 'POST', path: '/placeholder', headers: jsonHeaders }],
    setupClient: (c: Client) => {
      const id = agreementIds[nextClient++ % agreementIds.length]!;
      let k = 0;
      c.setRequests([progressRequest(id, `${runTag}-${id}`, () => k++, client.headers, audit)]);
    },
  };
}

export type Verification = {
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
  /** 2xx the server counted (GET /metrics, before and after); null: it does not count the progress route. */
  server2xx: number | null;
  readModelsMatchLog: boolean;
  consistent: boolean;
};

type HistoryEvent = { revision: number; type: string; correlationId?: string; data: { commitmentId?: string; percent?: number } };

async function historySince(client: ServiceClient, id: string, fromRevision: number): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let from: number | null = fromRevision;
  while (from !== null) {
    const h = await call(client.base, client.auditHeaders, 'GET', `/v1/agreements/${id}/history?fromRevision=${from}&limit=1000`);
    const page = h.json as { events?: HistoryEvent[]; nextFromRevision?: number | null } | null;
    if (h.status !== 200 || !page?.events) throw new Error(`history of ${id}: HTTP ${h.status}`);
    events.push(...page.events);
    from = page.nextFromRevision ?? null;
  }
  return events;
}

async function logHeads(client: ServiceClient, ids: string[]): Promise<Map<string, number>> {
  const heads = new Map<string, number>();
  for (const id of ids) heads.set(id, (await revisions(client, id)).log);
  return heads;
}

async function verifyRun(client: ServiceClient, before: Map<string, number>, run: LoadRun, audit: Audit, metricsBefore: { ok2xx: number } | null): Promise<Verification> {
  const ids = [...before.keys()];
  await waitQuiescent(client, ids);
  let eventsAppended = 0;
  let answersMatchedToEvents = 0;
  let eventsOfUnansweredRequests = 0;
  let foreignEvents = 0;
  let duplicatedRequests = 0;
  let readModelsMatchLog = true;
  const seen = new Set<string>();
  const answersLeft = new Map(audit.answers);
  for (const id of ids) {
    const rev = await revisions(client, id);
    if (rev.log !== rev.readModel) readModelsMatchLog = false;
    for (const e of await historySince(client, id, before.get(id)! + 1)) {
      eventsAppended++;
      // The service records a caller's correlation id under its key's name (`<key>:<id>`).
      const sentId = e.correlationId?.slice(e.correlationId.indexOf(':') + 1);
      const req = sentId === undefined ? undefined : audit.sent.get(sentId);
      if (!req || e.type !== 'ProgressReported' || req.agreementId !== id || e.data.commitmentId !== req.commitmentId || e.data.percent !== req.percent) {
        foreignEvents++;
        continue;
      }
      if (seen.has(sentId!)) duplicatedRequests++;
      seen.add(sentId!);
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
  const metrics = await progressAnswers(client);
  const server2xx = metrics ? metrics.ok2xx - (metricsBefore?.ok2xx ?? 0) : null;
  const client2xx = run.result['2xx'];
  const unansweredRequests = Math.max(0, run.sent - run.answered);
  const consistent = answersMatchedToEvents === client2xx && answersWithoutEvent === 0 && audit.unreadable2xx === 0 && foreignEvents === 0 &&
    duplicatedRequests === 0 && eventsOfUnansweredRequests <= unansweredRequests && readModelsMatchLog &&
    // The server counts a 2xx when it wrote one: never more than the events appended, never fewer
    // than the answers heard. Commands completed after their client hung up append an event the
    // server may not count (a reply to a destroyed socket does not always reach onResponse).
    (server2xx === null || (server2xx <= eventsAppended && server2xx >= answersMatchedToEvents));
  return {
    agreements: ids.length, eventsAppended, client2xx, answersMatchedToEvents, answersWithoutEvent, unreadable2xx: audit.unreadable2xx,
    eventsOfUnansweredRequests, unansweredRequests, foreignEvents, duplicatedRequests, server2xx, readModelsMatchLog, consistent,
  };
}

/** One line saying what the audit found, for progress output and the JSON. */
export function describeVerification(v: Verification): string {
  return `${v.client2xx} 2xx answers, ${v.eventsAppended} events appended to ${v.agreements} stream(s) -> ${v.consistent ? 'OK' : 'MISMATCH'}: ` +
    `${v.answersMatchedToEvents} answers matched to their event; ${v.answersWithoutEvent} answers without an event; ` +
    `${v.eventsOfUnansweredRequests} events from requests in flight at stop (${v.unansweredRequests} unanswered); ` +
    `${v.foreignEvents} foreign, ${v.duplicatedRequests} duplicated; read models ${v.readModelsMatchLog ? 'at' : 'NOT at'} the log's revision; ` +
    `server-side 2xx ${v.server2xx === null ? 'not counted' : v.server2xx}`;
}

export type CommandRun = LoadSummary & { verification: Verification };

let runCounter = 0;

/**
 * Progress reports at `connections` clients for `durationS` seconds (after `warmupS` unrecorded
 * seconds on the same agreements), then the audit of the log against the answers.
 */
export async function measureCommands(
  client: ServiceClient,
  run: { label: string; connections: number; shape: 'single' | 'multi'; agreementIds: string[]; durationS: number; warmupS: number },
  progress: (m: string) => void,
): Promise<CommandRun> {
  const tag = `bench${++runCounter}`;
  if (run.warmupS > 0) {
    await runLoad(`${run.label} warm-up`, loadOptions(client, run.connections, run.shape, run.agreementIds, `${tag}w`, null), run.warmupS, () => undefined);
    await waitQuiescent(client, run.agreementIds);
  }
  const before = await logHeads(client, run.agreementIds);
  const metricsBefore = await progressAnswers(client);
  const audit = newAudit();
  progress(`${run.label}, ${run.durationS} s`);
  const loaded = await runLoad(run.label, loadOptions(client, run.connections, run.shape, run.agreementIds, tag, audit), run.durationS, progress);
  const verification = await verifyRun(client, before, loaded, audit, metricsBefore);
  progress(`  audit: ${describeVerification(verification)}`);
  return { ...summaryOf(loaded, run.durationS), verification };
}
