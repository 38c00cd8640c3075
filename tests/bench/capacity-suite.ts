// The capacity half of `pnpm bench` (issue 7): how fast the read models are rebuilt from a large
// log (into memory and into Redis), how much memory the embedded service needs to hold them, and
// how fast the reminders role plans and enqueues every review at start. Each figure stands beside
// a baseline measured in the same run (see bench-kit.ts). tests/bench/run-all.ts imports
// `capacitySuite`; run directly it prints its own rows:
//
//   pnpm exec tsx tests/bench/capacity-suite.ts [--quick] [--only rebuild-memory,rebuild-redis,service,reminders]
//                                               [--events N] [--reviews N] [--profile]
//   pnpm exec tsx tests/bench/capacity-suite.ts --summarize bench/profiles/<file>.cpuprofile
//
// `--profile` starts the service with `--cpu-prof` (profiles under bench/profiles/); to profile the
// in-process parts, start this file with `node --cpu-prof --cpu-prof-dir=bench/profiles --import tsx`.
// Loopback only. Temp folders, child processes and Redis keys (a namespace of its own) are removed
// at the end, also when a step fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { reviewStream, type ExistingReview } from '@cm/domain';
import { CURRENT_HASH_SCHEME, createSqliteEventStore, eventHash, genesisHash, type StoredEvent } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import { createMemoryReadStore, createProjector, dropGeneration, rebuildReadModels, waitForCheckpoint } from '@cm/read-models';
import {
  createBullmqScheduler, createRemindersRole, loadReview, planReminders, reminderJobId,
  type PlannedReminder, type ReminderOffset, type ReminderProcessor,
} from '@cm/reminders';
import type { BenchOptions, BenchRow, BenchSuite } from './bench-kit.js';
import { createRandom } from '@cm/read-models/testing';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROFILE_DIR = join(REPO_ROOT, 'bench', 'profiles');

export type CapacityPart = 'rebuild-memory' | 'rebuild-redis' | 'service' | 'reminders';
const ALL_PARTS: CapacityPart[] = ['rebuild-memory', 'rebuild-redis', 'service', 'reminders'];

export type CapacityRunOptions = BenchOptions & {
  parts?: readonly CapacityPart[];
  /** Events in the generated log (default 1,000,000; quick 100,000). */
  events?: number;
  /** Reviews in the reminders log (default 10,000; quick 1,000). */
  reviews?: number;
  /** Start the service child with --cpu-prof, writing under bench/profiles/. */
  profileService?: boolean;
};

const FULL_EVENTS = 1_000_000;
const QUICK_EVENTS = 100_000;
const TARGET_MEMORY_EVENTS_PER_S = 50_000;
const TARGET_REDIS_EVENTS_PER_S = 20_000;
const TARGET_PEAK_RSS_MB = 500;

const MiB = 1024 * 1024;
const seconds = (fromNs: bigint) => Number(process.hrtime.bigint() - fromNs) / 1e9;
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The log: agreements of ten commitments each, then progress, delays, implementations and the odd
// cancellation, interleaved over a pool of agreements open at the same time (as a ministry
// reports on many agreements in a week, not one agreement at a time). Written through the
// store's own importEvents (one transaction, hashes chained and re-verified by the store), so the
// result is a log the service opens like any other.
// ---------------------------------------------------------------------------------------------

/** The same seed gives the same sequence in every run. */
const prng = (seed: number) => createRandom(seed).next;

const SECTORS = ['health', 'energy', 'science', 'air_connectivity', 'agriculture', 'education', 'culture', 'finance'];
const KINDS = ['agreement', 'protocol', 'memorandum', 'programme', 'contract'] as const;
const INSTITUTIONS = 40;
const DAY_MS = 86_400_000;
const COMMITMENTS_PER_AGREEMENT = 10;
const addDays = (isoDate: string, days: number) => new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);

export type LedgerLog = { path: string; events: number; agreements: number; commitments: number; seconds: number; bytes: number };

type OpenAgreement = {
  id: string;
  revision: number;
  prevHash: string;
  updatesLeft: number;
  commitments: { id: string; dueDate: string; percent: number; open: boolean }[];
};

function* ledgerEvents(total: number, counts: { agreements: number; commitments: number }): Generator<StoredEvent> {
  const rand = prng(7);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const start = Date.UTC(2025, 10, 28, 9);
  // Spread over about a year of recording, in order (recordedAt never goes backwards).
  const stepMs = Math.max(1, Math.floor((365 * DAY_MS) / total));
  const poolSize = Math.min(2000, Math.max(50, Math.round(total / 500)));
  const pool: OpenAgreement[] = [];
  let position = 0;
  let clock = start;

  const stored = (a: OpenAgreement, type: string, data: unknown, recordedAt: string): StoredEvent => {
    const metadata = { actor: `desk-${a.revision % 7}@mppre.example`, occurredAt: recordedAt, correlationId: randomUUID(), recordedAt, hashScheme: CURRENT_HASH_SCHEME };
    a.revision++;
    position++;
    const stream = `agreement-${a.id}`;
    const id = randomUUID();
    if (a.revision === 0) a.prevHash = genesisHash(CURRENT_HASH_SCHEME, stream);
    const hash = eventHash({ stream, id, revision: a.revision, prevHash: a.prevHash, type, data, metadata });
    const e: StoredEvent = { id, stream, revision: a.revision, position: String(position), type, data, metadata, prevHash: a.prevHash, hash };
    a.prevHash = hash;
    return e;
  };

  while (position < total) {
    clock += stepMs;
    const recordedAt = new Date(clock).toISOString();
    const today = recordedAt.slice(0, 10);
    if (pool.length < poolSize && total - position >= 1 + COMMITMENTS_PER_AGREEMENT) {
      // One signature: the agreement and its commitments in one append, as the API records it.
      const n = counts.agreements++;
      const a: OpenAgreement = { id: `cian-${String(n).padStart(7, '0')}`, revision: -1, prevHash: '', updatesLeft: int(15, 45), commitments: [] };
      const sector = SECTORS[n % SECTORS.length]!;
      yield stored(a, 'AgreementSigned', {
        agreementId: a.id, title: `Agreement ${n} on cooperation in ${sector.replace('_', ' ')}`, kind: KINDS[n % KINDS.length], sector,
        parties: ['VEN', 'RUS'], signedAt: today, session: { name: `CIAN ${19 + Math.floor(n / 500)}`, date: today },
      }, recordedAt);
      for (let c = 0; c < COMMITMENTS_PER_AGREEMENT; c++) {
        const commitment = { id: `c-${c}`, dueDate: addDays(today, int(60, 900)), percent: 0, open: true };
        a.commitments.push(commitment);
        counts.commitments++;
        const inst = int(0, INSTITUTIONS - 1);
        yield stored(a, 'CommitmentAdded', {
          agreementId: a.id, commitmentId: commitment.id, title: `Commitment ${c} of agreement ${n}`, dueDate: commitment.dueDate,
          responsible: { party: inst % 2 ? 'RUS' : 'VEN', institution: `Institution ${inst} of the ministry` },
        }, recordedAt);
      }
      pool.push(a);
      continue;
    }
    if (pool.length === 0) break;
    const slot = int(0, pool.length - 1);
    const a = pool[slot]!;
    const open = a.commitments.filter((c) => c.open);
    const c = open[int(0, open.length - 1)]!;
    const r = rand();
    if (r < 0.7) {
      c.percent = Math.min(95, c.percent + int(5, 25));
      yield stored(a, 'ProgressReported', r < 0.35
        ? { commitmentId: c.id, percent: c.percent, note: `working group met; ${c.percent}% of the milestones done` }
        : { commitmentId: c.id, percent: c.percent }, recordedAt);
    } else if (r < 0.82) {
      const newDueDate = addDays(c.dueDate, int(30, 180));
      yield stored(a, 'CommitmentDelayed', { commitmentId: c.id, reason: 'funding for the second phase not yet approved', previousDueDate: c.dueDate, newDueDate }, recordedAt);
      c.dueDate = newDueDate;
    } else if (r < 0.97) {
      c.open = false;
      yield stored(a, 'CommitmentImplemented', { commitmentId: c.id, note: 'handed over at the joint commission' }, recordedAt);
    } else {
      c.open = false;
      yield stored(a, 'CommitmentCancelled', { commitmentId: c.id, reason: 'superseded by a later agreement' }, recordedAt);
    }
    a.updatesLeft--;
    if (a.updatesLeft <= 0 || a.commitments.every((x) => !x.open)) {
      pool[slot] = pool.at(-1)!;
      pool.pop();
    }
  }
}

/** Writes `total` events into a new SQLite log at `path` (its folder must exist). */
export async function writeLedgerLog(path: string, total: number, progress: (m: string) => void): Promise<LedgerLog> {
  const store = createSqliteEventStore({ path });
  const counts = { agreements: 0, commitments: 0 };
  const started = process.hrtime.bigint();
  let last = Date.now();
  let n = 0;
  const events = ledgerEvents(total, counts);
  function* withProgress() {
    for (const e of events) {
      n++;
      if (Date.now() - last >= 2000) {
        last = Date.now();
        progress(`  writing the log: ${fmt(n)}/${fmt(total)} events (${seconds(started).toFixed(0)} s)`);
      }
      yield e;
    }
  }
  try {
    const summary = await store.importEvents(withProgress());
    const s = seconds(started);
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = (store.db.prepare('SELECT page_count * page_size AS b FROM pragma_page_count(), pragma_page_size()').get() as { b: number }).b;
    progress(`  log written: ${fmt(summary.events)} events, ${fmt(counts.agreements)} agreements, ${fmt(counts.commitments)} commitments in ${s.toFixed(1)} s (${(bytes / MiB).toFixed(0)} MiB)`);
    return { path, events: summary.events, agreements: counts.agreements, commitments: counts.commitments, seconds: s, bytes };
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Rebuild into memory, beside a raw read-parse-fold of the same log.
// ---------------------------------------------------------------------------------------------

/** The projector on an empty memory read store, as the embedded service starts. */
export async function measureMemoryRebuild(log: LedgerLog, progress: (m: string) => void) {
  const store = createSqliteEventStore({ path: log.path });
  const readStore = createMemoryReadStore();
  const logger = createLogger({ level: 'warn', fd: 2 });
  const projector = createProjector({ eventStore: store, readStore, logger });
  try {
    const head = (await store.headPosition())!;
    let last = Date.now();
    const started = process.hrtime.bigint();
    const off = readStore.onCommit((cp) => {
      if (Date.now() - last < 2000) return;
      last = Date.now();
      progress(`  rebuilding into memory: ${fmt(Number(cp))}/${fmt(log.events)} events, ${fmt(Number(cp) / seconds(started))} events/s`);
    });
    await projector.start();
    if (!(await waitForCheckpoint(readStore, head, 30 * 60_000))) throw new Error('the memory rebuild did not reach the head of the log');
    const s = seconds(started);
    off();
    const agreements = await readStore.allAgreements();
    const commitments = agreements.reduce((k, d) => k + d.agreement.commitments.length, 0);
    return { seconds: s, eventsPerSecond: log.events / s, agreements: agreements.length, commitments };
  } finally {
    await projector.stop();
    await store.close();
  }
}

/**
 * The floor under any projection: every row read from SQLite in order, its data and metadata
 * JSON-parsed, and each commitment's status, progress and due date folded into a Map.
 */
export function measureRawFold(log: LedgerLog) {
  const db = new Database(log.path, { readonly: true });
  try {
    const started = process.hrtime.bigint();
    const commitments = new Map<string, { status: string; percent: number; dueDate: string; at: string }>();
    let rows = 0;
    for (const row of db.prepare('SELECT stream, type, data, metadata FROM events ORDER BY position').iterate() as Iterable<{ stream: string; type: string; data: string; metadata: string }>) {
      rows++;
      const data = JSON.parse(row.data) as { commitmentId?: string; dueDate?: string; newDueDate?: string; percent?: number };
      const meta = JSON.parse(row.metadata) as { recordedAt: string };
      if (!data.commitmentId) continue;
      const key = `${row.stream}/${data.commitmentId}`;
      const c = commitments.get(key) ?? { status: 'pending', percent: 0, dueDate: '', at: '' };
      if (row.type === 'CommitmentAdded') c.dueDate = data.dueDate!;
      else if (row.type === 'ProgressReported') (c.percent = data.percent!), (c.status = 'in_progress');
      else if (row.type === 'CommitmentDelayed') (c.dueDate = data.newDueDate!), (c.status = 'delayed');
      else if (row.type === 'CommitmentImplemented') c.status = 'implemented';
      else if (row.type === 'CommitmentCancelled') c.status = 'cancelled';
      c.at = meta.recordedAt;
      commitments.set(key, c);
    }
    const s = seconds(started);
    return { seconds: s, eventsPerSecond: rows / s, rows, commitments: commitments.size };
  } finally {
    db.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Rebuild into Redis, beside a raw pipeline writing the same end state.
// ---------------------------------------------------------------------------------------------

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  return keys;
}

async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  const keys = await scanKeys(redis, pattern);
  for (let i = 0; i < keys.length; i += 1000) await redis.unlink(...keys.slice(i, i + 1000));
  return keys.length;
}

type RawWrite = { cmd: 'set'; key: string; value: string } | { cmd: 'zadd'; key: string; args: string[] } | { cmd: 'hset'; key: string; args: string[] } | { cmd: 'sadd'; key: string; args: string[] };

/**
 * The same end state written by a bare client: every key the rebuild produced, read back (not
 * timed), then written under another prefix with plain variadic SET/ZADD/HSET/SADD (at most 1,000
 * members a command) in MULTI blocks of about 2,000 entries, one after another, as the rebuild
 * commits one MULTI per batch. What this costs is what writing the result costs; the rest of the
 * rebuild's time is reading the log, folding and working out the index changes.
 */
export async function rawPipelineOfEndState(redis: Redis, sourcePrefix: string, destPrefix: string) {
  const keys = await scanKeys(redis, `${sourcePrefix}*`);
  const types: string[] = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const p = redis.pipeline();
    for (const k of keys.slice(i, i + 1000)) p.type(k);
    for (const [err, t] of (await p.exec())!) {
      if (err) throw err;
      types.push(t as string);
    }
  }
  const writes: RawWrite[] = [];
  let entries = 0;
  const CHUNK = 1000;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const to = destPrefix + key.slice(sourcePrefix.length);
    const type = types[i];
    if (type === 'string') {
      writes.push({ cmd: 'set', key: to, value: (await redis.get(key))! });
      entries++;
    } else if (type === 'zset') {
      const ms = await redis.zrange(key, '0', '-1', 'WITHSCORES');
      for (let j = 0; j < ms.length; j += 2 * CHUNK) {
        const args: string[] = [];
        for (let k = j; k < Math.min(ms.length, j + 2 * CHUNK); k += 2) args.push(ms[k + 1]!, ms[k]!);
        writes.push({ cmd: 'zadd', key: to, args });
      }
      entries += ms.length / 2;
    } else if (type === 'hash') {
      const flat = Object.entries(await redis.hgetall(key)).flat();
      for (let j = 0; j < flat.length; j += 2 * CHUNK) writes.push({ cmd: 'hset', key: to, args: flat.slice(j, j + 2 * CHUNK) });
      entries += flat.length / 2;
    } else if (type === 'set') {
      const ms = await redis.smembers(key);
      for (let j = 0; j < ms.length; j += CHUNK) writes.push({ cmd: 'sadd', key: to, args: ms.slice(j, j + CHUNK) });
      entries += ms.length;
    }
  }
  const started = process.hrtime.bigint();
  let block = redis.multi();
  let inBlock = 0;
  for (const w of writes) {
    if (w.cmd === 'set') block.set(w.key, w.value);
    else if (w.cmd === 'zadd') block.zadd(w.key, ...w.args);
    else if (w.cmd === 'hset') block.hset(w.key, ...w.args);
    else block.sadd(w.key, ...w.args);
    inBlock += w.cmd === 'set' ? 1 : w.args.length / (w.cmd === 'sadd' ? 1 : 2);
    if (inBlock >= 2000) {
      await block.exec();
      block = redis.multi();
      inBlock = 0;
    }
  }
  if (inBlock > 0) await block.exec();
  const s = seconds(started);
  return { keys: keys.length, entries, commands: writes.length, seconds: s };
}

export async function measureRedisRebuild(log: LedgerLog, redisUrl: string, progress: (m: string) => void) {
  const ns = `bench-capacity-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(redisUrl);
  const store = createSqliteEventStore({ path: log.path });
  try {
    let last = Date.now();
    const summary = await rebuildReadModels({
      eventStore: store,
      redisUrl,
      namespace: ns,
      logger: createLogger({ level: 'warn', fd: 2 }),
      onProgress: (p) => {
        if (Date.now() - last < 2000) return;
        last = Date.now();
        progress(`  rebuilding into Redis: ${fmt(p.events)}/${fmt(log.events)} events, ${fmt(p.eventsPerSecond)} events/s, ETA ${Math.round(p.etaSeconds ?? 0)} s`);
      },
    });
    progress(`  rebuilt into Redis in ${summary.seconds.toFixed(1)} s; the raw pipeline of the same end state...`);
    const raw = await rawPipelineOfEndState(redis, `${ns}:g${summary.generation}:`, `${ns}-raw:g1:`);
    return { summary, raw };
  } finally {
    await store.close();
    await deleteKeys(redis, `${ns}*`).catch((err: unknown) => progress(`  could not delete Redis keys ${ns}*: ${String(err)}`));
    await redis.quit();
  }
}

// ---------------------------------------------------------------------------------------------
// The embedded service holding the read models: peak RSS and time to ready, beside a bare Node
// process (RSS) and the same service on an empty log (time to ready).
// ---------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Peak and current resident set of a process, from /proc (Linux). */
function memoryOf(pid: number): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakMiB: kib('VmHWM') / 1024, rssMiB: kib('VmRSS') / 1024 };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A bare `node` that has loaded nothing but keeps running, measured as the service is. */
async function measureBareNode() {
  const child = spawn(process.execPath, ['-e', "process.stdout.write('up\\n'); setInterval(() => {}, 1 << 30)"], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((ok, fail) => {
      child.once('error', fail);
      child.stdout!.once('data', () => ok());
    });
    await sleep(200);
    return memoryOf(child.pid!);
  } finally {
    await stopChild(child);
  }
}

export async function measureService(dataDir: string, expectedHead: number, options: { profile?: boolean; progress: (m: string) => void; timeoutMs?: number }) {
  const port = await freePort();
  const execArgv = options.profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', AUTH: 'off', RATE_LIMIT: 'off', ROLES: 'api,projector', LOG_LEVEL: 'warn',
    // Embedded: an inherited REDIS_URL or EVENT_STORE_URL would move the read models or the log elsewhere.
    REDIS_URL: '', EVENT_STORE_URL: '', SMTP_URL: '',
  };
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, [...execArgv, '--import', 'tsx', 'services/api/src/main.ts'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  try {
    const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000);
    let last = 0;
    let body: { projections?: { checkpoint: string | null; lag: number }[] } = {};
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}) before it was ready: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error('the service was not ready in time');
      const res = await fetch(`http://127.0.0.1:${port}/ready`, { signal: AbortSignal.timeout(5000) }).catch(() => null);
      if (res) {
        body = (await res.json().catch(() => ({}))) as typeof body;
        if (res.status === 200) break;
        if (Date.now() - last >= 2000) {
          last = Date.now();
          const cp = Number(body.projections?.[0]?.checkpoint ?? 0);
          options.progress(`  service catching up: ${fmt(cp)}/${fmt(expectedHead)} events, RSS ${memoryOf(child.pid!).rssMiB.toFixed(0)} MiB`);
        }
      }
      await sleep(100);
    }
    const readySeconds = seconds(started);
    const memory = memoryOf(child.pid!);
    return { readySeconds, ...memory, checkpoint: body.projections?.[0]?.checkpoint ?? null };
  } finally {
    await stopChild(child);
  }
}

// ---------------------------------------------------------------------------------------------
// Reminders: the role's reconciliation at start, from a log of reviews dated in the future.
// ---------------------------------------------------------------------------------------------

const OFFSETS: ReminderOffset[] = [{ label: '7d', ms: 7 * DAY_MS }, { label: '1d', ms: DAY_MS }];
const ATTENDEES = 3;

async function writeReviewLog(path: string, reviews: number, nowMs: number) {
  const store = createSqliteEventStore({ path });
  try {
    const recordedAt = new Date(nowMs - 60_000).toISOString();
    function* events(): Generator<StoredEvent> {
      for (let i = 0; i < reviews; i++) {
        const reviewId = `review-${String(i).padStart(6, '0')}`;
        // 30 to 60 days ahead: both offsets are still to come, nothing is due during the run.
        const scheduledFor = new Date(nowMs + 30 * DAY_MS + i * 250_000).toISOString();
        const data = {
          reviewId, title: `Review ${i} of the health cooperation`, scheduledFor,
          agreementIds: [`cian-${String(i % 500).padStart(7, '0')}`, `cian-${String((i + 1) % 500).padStart(7, '0')}`],
          attendees: Array.from({ length: ATTENDEES }, (_, k) => ({ email: `focal-${i}-${k}@ministry.example`, locale: (['en', 'es', 'ru'] as const)[k % 3] })),
        };
        const metadata = { actor: 'bench', occurredAt: recordedAt, correlationId: randomUUID(), recordedAt, hashScheme: CURRENT_HASH_SCHEME };
        const id = randomUUID();
        const stream = reviewStream(reviewId);
        const prevHash = genesisHash(CURRENT_HASH_SCHEME, stream);
        yield {
          id, stream, revision: 0, position: String(i + 1), type: 'ReviewScheduled', data, metadata,
          prevHash, hash: eventHash({ stream, id, revision: 0, prevHash, type: 'ReviewScheduled', data, metadata }),
        };
      }
    }
    await store.importEvents(events());
  } finally {
    await store.close();
  }
}

/**
 * What a delayed BullMQ job leaves in Redis, written with a plain ioredis pipeline: the job hash
 * (name, data, opts, timestamp, delay) and its member in the delayed sorted set, per planned send.
 * No Lua, no id checks, no event stream: the floor under `queue.addBulk`.
 */
async function rawJobPipeline(redis: Redis, prefix: string, plans: readonly PlannedReminder[], nowMs: number) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < plans.length; i += 1000) {
    const p = redis.pipeline();
    for (const plan of plans.slice(i, i + 1000)) {
      const id = reminderJobId(plan.id);
      const delay = Math.max(0, Date.parse(plan.sendAt) - nowMs);
      p.hset(`${prefix}:${id}`, 'name', 'reminder', 'data', JSON.stringify(plan), 'opts', JSON.stringify({ attempts: 5, backoff: { type: 'exponential', delay: 2000 }, delay }), 'timestamp', String(nowMs), 'delay', String(delay));
      p.zadd(`${prefix}:delayed`, String(nowMs + delay), id);
      p.sadd(`${prefix}:review:${plan.reviewId}`, plan.id);
    }
    await p.exec();
  }
  return seconds(started);
}

export async function measureReminders(dir: string, reviews: number, redisUrl: string, progress: (m: string) => void) {
  const path = join(dir, 'reviews.sqlite');
  const nowMs = Date.now();
  const now = () => new Date(nowMs);
  await writeReviewLog(path, reviews, nowMs);
  progress(`  review log written: ${fmt(reviews)} reviews x ${ATTENDEES} attendees x ${OFFSETS.length} offsets`);
  const ns = `bench-capacity-rem-${randomUUID().slice(0, 8)}`;
  const redis = new Redis(redisUrl);
  const store = createSqliteEventStore({ path });
  const logger = createLogger({ level: 'warn', fd: 2 });
  try {
    // The role's read of every review, then planning alone (pure), timed apart.
    const ids = (await store.listStreams()).map((s) => s.slice('review-'.length));
    let t = process.hrtime.bigint();
    const states: ExistingReview[] = [];
    for (const id of ids) {
      const { state } = await loadReview(store, id);
      if (state.exists) states.push(state);
    }
    const loadSeconds = seconds(t);
    const nowIso = now().toISOString();
    t = process.hrtime.bigint();
    const plans: PlannedReminder[] = [];
    for (const s of states) for (const p of planReminders(s, OFFSETS, nowIso)) plans.push(p);
    const planSeconds = seconds(t);
    progress(`  planned ${fmt(plans.length)} sends in ${(planSeconds * 1000).toFixed(0)} ms (loading the reviews: ${(loadSeconds * 1000).toFixed(0)} ms)`);

    // Nothing is due during the run, so the processor is never called; if it were, it says so.
    const processor: ReminderProcessor = {
      send: async (job) => { throw new Error(`bench: no send expected (${job.id})`); },
      fail: async () => undefined,
    };
    const scheduler = createBullmqScheduler({ redisUrl, namespace: ns, processor, logger, now });
    const role = createRemindersRole({ eventStore: store, scheduler, offsets: OFFSETS, now, logger });
    let roleSeconds: number;
    try {
      t = process.hrtime.bigint();
      await role.start();
      roleSeconds = seconds(t);
    } finally {
      await role.stop();
    }
    const queued = await redis.zcard(`bull:${ns}-reminders:delayed`);
    progress(`  reminders role reconciled ${fmt(ids.length)} reviews into BullMQ in ${roleSeconds.toFixed(1)} s (${fmt(queued)} delayed jobs); raw pipeline...`);
    const rawSeconds = await rawJobPipeline(redis, `${ns}-raw`, plans, nowMs);
    return { reviews: ids.length, sends: plans.length, queued, loadSeconds, planSeconds, roleSeconds, rawSeconds };
  } finally {
    await store.close();
    for (const pattern of [`bull:${ns}-reminders:*`, `${ns}:*`, `${ns}-raw:*`]) {
      await deleteKeys(redis, pattern).catch((err: unknown) => progress(`  could not delete Redis keys ${pattern}: ${String(err)}`));
    }
    await redis.quit();
  }
}

// ---------------------------------------------------------------------------------------------
// The suite.
// ---------------------------------------------------------------------------------------------

export async function runCapacity(options: CapacityRunOptions): Promise<BenchRow[]> {
  const parts = new Set(options.parts ?? ALL_PARTS);
  const events = options.events ?? (options.quick ? QUICK_EVENTS : FULL_EVENTS);
  const reviews = options.reviews ?? (options.quick ? 1_000 : 10_000);
  const { progress } = options;
  const rows: BenchRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cm-capacity-bench-'));
  const dataset = (log: LedgerLog) => ({ events: log.events, agreements: log.agreements, commitments: log.commitments, logMiB: Math.round(log.bytes / MiB) });
  try {
    let log: LedgerLog | null = null;
    if (parts.has('rebuild-memory') || parts.has('rebuild-redis') || parts.has('service')) {
      progress(`capacity: generating a log of ${fmt(events)} events`);
      log = await writeLedgerLog(join(dir, 'events.sqlite'), events, progress);
    }

    if (log && parts.has('rebuild-memory')) {
      progress('capacity: raw read + parse + fold of the log (baseline)');
      const raw = measureRawFold(log);
      progress(`  raw fold: ${fmt(raw.eventsPerSecond)} events/s; the projector into memory...`);
      const mem = await measureMemoryRebuild(log, progress);
      rows.push({
        group: 'rebuild',
        name: `projection rebuild into memory, ${fmt(log.events)} events`,
        value: Math.round(mem.eventsPerSecond),
        unit: 'events/s',
        baseline: { name: 'raw SQLite read + JSON.parse + Map fold of the same rows', value: Math.round(raw.eventsPerSecond), unit: 'events/s' },
        ratio: mem.eventsPerSecond / raw.eventsPerSecond,
        target: { text: `>= ${fmt(TARGET_MEMORY_EVENTS_PER_S)} events/s`, met: mem.eventsPerSecond >= TARGET_MEMORY_EVENTS_PER_S },
        details: { ...dataset(log), seconds: +mem.seconds.toFixed(2), baselineSeconds: +raw.seconds.toFixed(2), documents: mem.agreements, commitmentsInReadModel: mem.commitments, logWrittenSeconds: +log.seconds.toFixed(1) },
      });
    }

    if (log && parts.has('rebuild-redis')) {
      progress('capacity: rebuild into Redis (rebuildReadModels)');
      const { summary, raw } = await measureRedisRebuild(log, options.redisUrl, progress);
      const rate = summary.events / summary.seconds;
      const rawRate = summary.events / raw.seconds;
      rows.push({
        group: 'rebuild',
        name: `projection rebuild into Redis, ${fmt(summary.events)} events`,
        value: Math.round(rate),
        unit: 'events/s',
        baseline: { name: 'raw MULTI pipeline writing the same end state (variadic SET/ZADD/HSET/SADD), as events/s', value: Math.round(rawRate), unit: 'events/s' },
        ratio: rate / rawRate,
        ratioNote: 'raw pipeline time / rebuild time',
        target: { text: `>= ${fmt(TARGET_REDIS_EVENTS_PER_S)} events/s`, met: rate >= TARGET_REDIS_EVENTS_PER_S },
        details: { ...dataset(log), seconds: +summary.seconds.toFixed(2), rawSeconds: +raw.seconds.toFixed(2), rawKeys: raw.keys, rawEntries: raw.entries, rawCommands: raw.commands },
      });
    }

    if (log && parts.has('service')) {
      progress('capacity: bare node process (baseline)');
      const bare = await measureBareNode();
      progress('capacity: the service on an empty log (baseline for time to ready)');
      const emptyDir = join(dir, 'empty');
      const empty = await measureService(emptyDir, 0, { progress, profile: false });
      progress(`capacity: the service on ${fmt(log.events)} events (ROLES=api,projector, memory read models)`);
      const full = await measureService(dirname(log.path), log.events, { progress, profile: options.profileService });
      const atFullSize = log.events >= FULL_EVENTS;
      rows.push({
        group: 'memory',
        name: `peak RSS of the embedded service holding ${fmt(log.events)} events' read models`,
        value: Math.round(full.peakMiB),
        unit: 'MiB',
        baseline: { name: 'peak RSS of a bare node process', value: Math.round(bare.peakMiB), unit: 'MiB' },
        ratio: full.peakMiB / bare.peakMiB,
        ...(atFullSize ? { target: { text: `< ${TARGET_PEAK_RSS_MB} MB at 1,000,000 events`, met: full.peakMiB * MiB < TARGET_PEAK_RSS_MB * 1e6 } } : {}),
        details: {
          ...dataset(log), rssAfterReadyMiB: Math.round(full.rssMiB), emptyLogPeakMiB: Math.round(empty.peakMiB), emptyLogRssMiB: Math.round(empty.rssMiB),
          ...(atFullSize ? {} : { targetNote: `the ${TARGET_PEAK_RSS_MB} MB target is for 1,000,000 events; not judged on a quick run` }),
        },
      });
      rows.push({
        group: 'memory',
        name: `time to ready (start-up rebuild) with ${fmt(log.events)} events`,
        value: +full.readySeconds.toFixed(2),
        unit: 's',
        baseline: { name: 'time to ready on an empty log', value: +empty.readySeconds.toFixed(2), unit: 's' },
        ratio: full.readySeconds / empty.readySeconds,
        ratioNote: 'time / baseline time (higher is slower)',
        details: { eventsPerSecondIncludingStartUp: Math.round(log.events / full.readySeconds) },
      });
    }

    if (parts.has('reminders')) {
      progress(`capacity: reminders for ${fmt(reviews)} reviews`);
      const r = await measureReminders(dir, reviews, options.redisUrl, progress);
      rows.push({
        group: 'reminders',
        name: `planning the sends of ${fmt(r.reviews)} reviews (pure planReminders)`,
        value: Math.round(r.reviews / r.planSeconds),
        unit: 'reviews/s',
        baseline: { name: 'loading the same reviews from the log (loadReview: read + fold), which planning needs first', value: Math.round(r.reviews / r.loadSeconds), unit: 'reviews/s' },
        ratio: r.loadSeconds / r.planSeconds,
        ratioNote: 'load time / planning time',
        details: { sends: r.sends, planMs: +(r.planSeconds * 1000).toFixed(1), loadMs: +(r.loadSeconds * 1000).toFixed(1) },
      });
      rows.push({
        group: 'reminders',
        name: `reminders role start: reconcile ${fmt(r.reviews)} reviews into BullMQ`,
        value: Math.round(r.reviews / r.roleSeconds),
        unit: 'reviews/s',
        baseline: { name: 'raw ioredis pipeline writing the same delayed jobs (job hash + delayed zset + review set), as reviews/s', value: Math.round(r.reviews / r.rawSeconds), unit: 'reviews/s' },
        ratio: r.rawSeconds / r.roleSeconds,
        ratioNote: 'raw pipeline time / role time',
        details: { sends: r.sends, delayedJobs: r.queued, seconds: +r.roleSeconds.toFixed(2), rawSeconds: +r.rawSeconds.toFixed(2), sendsPerSecond: Math.round(r.sends / r.roleSeconds) },
      });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const capacitySuite: BenchSuite = (options) => runCapacity(options);

// ---------------------------------------------------------------------------------------------
// Run directly: the rows as a table, or a CPU profile's biggest self times.
// ---------------------------------------------------------------------------------------------

/** Self time by function (name, file:line) of a .cpuprofile, largest first. */
export function summarizeProfile(file: string, top = 15): { fn: string; selfMs: number; share: number }[] {
  type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${f.url.replace(/^file:\/\//, '').replace(`${REPO_ROOT}/`, '')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([fn, ms]) => ({ fn, selfMs: Math.round(ms), share: +(ms / total).toFixed(3) }));
}

function printRows(rows: BenchRow[]): void {
  for (const r of rows) {
    const ratio = r.ratio === null ? '' : `${r.ratio.toFixed(2)}x${r.ratioNote ? ` (${r.ratioNote})` : ''}`;
    const target = r.target ? `  target ${r.target.text}: ${r.target.met ? 'met' : 'MISSED'}` : '';
    console.log(`[${r.group}] ${r.name}: ${fmt(r.value)} ${r.unit}`);
    if (r.baseline) console.log(`    baseline ${r.baseline.name}: ${fmt(r.baseline.value)} ${r.baseline.unit}; ratio ${ratio}${target}`);
    if (r.details) console.log(`    ${JSON.stringify(r.details)}`);
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const summarize = flag('--summarize');
  if (summarize) {
    for (const r of summarizeProfile(summarize, Number(flag('--top') ?? 15))) console.log(`${String(r.selfMs).padStart(7)} ms  ${(r.share * 100).toFixed(1).padStart(5)}%  ${r.fn}`);
    return;
  }
  const only = flag('--only');
  const rows = await runCapacity({
    quick: args.includes('--quick'),
    progress: (m) => process.stderr.write(`${m}\n`),
    redisUrl: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    ...(only ? { parts: only.split(',').map((p) => p.trim() as CapacityPart) } : {}),
    ...(flag('--events') ? { events: Number(flag('--events')) } : {}),
    ...(flag('--reviews') ? { reviews: Number(flag('--reviews')) } : {}),
    profileService: args.includes('--profile'),
  });
  printRows(rows);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(`capacity bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  });
}
