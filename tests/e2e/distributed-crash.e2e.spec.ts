// Crash safety of the distributed shape with real processes: api processes and projector
// processes (ROLES=api / ROLES=projector) share one SQLite log under DATA_DIR and one Redis
// namespace. The projector holding the lease is SIGKILLed while commands flow through two apis;
// a stale lease holder is paused past its lease and resumed. Afterwards every read model in Redis
// must equal a fresh replay of its stream (GET ?asOf, which folds the log), stand at its stream
// revision, and every 2xx answer must be in the log exactly once.
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  dropNamespace, leasesAcquired, logLines, prng, randomNamespace, redisClient, shuffle, sleep, startApi, startProjector, until, type Cluster,
} from './support/distributed.js';
import { client, type Client, type Reply } from './support/http.js';
import { checkLog, readHistory, type HistoryEvent } from './support/ledger-checks.js';
import { killAllServices, makeDataDir, removeDataDir } from './support/service-process.js';

const DUE = '2099-06-30';
const SECTORS = ['health', 'aviation', 'science', 'economy'];
const COMMITMENTS = ['cm1', 'cm2', 'cm3', 'cm4', 'cm5'];
/** Events a create appends: AgreementSigned, then one CommitmentAdded per commitment. */
const CREATE_EVENTS = 1 + COMMITMENTS.length;

type Kind = 'create' | 'progress' | 'delay' | 'implement' | 'cancel';
type Command = {
  /** Idempotency-Key, and the tag (note, reason or title) that finds the command's event in the history. */
  key: string;
  kind: Kind;
  agreementId: string;
  commitmentId?: string;
  path: string;
  body: any;
  /** Which api process it goes through. */
  via: number;
};
type Outcome = { command: Command; reply: Reply | null; error?: string };

// ---- what runs between tests -------------------------------------------------------------
let redis: Redis | null = null;
let clusters: Cluster[] = [];

afterEach(async () => {
  await killAllServices();
  const r = redis;
  redis = null;
  for (const c of clusters) {
    if (r) await dropNamespace(r, c.namespace);
    removeDataDir(c.dataDir);
  }
  clusters = [];
  await r?.quit().catch(() => undefined);
}, 30_000);

function newCluster(): Cluster {
  redis ??= redisClient();
  const cluster = { dataDir: makeDataDir('cm-e2e-dist-'), namespace: randomNamespace() };
  clusters.push(cluster);
  return cluster;
}

// ---- commands ----------------------------------------------------------------------------
function create(agreementId: string, i: number, via: number): Command {
  return {
    key: `${agreementId}-create`,
    kind: 'create',
    agreementId,
    path: '/v1/agreements',
    via,
    body: {
      id: agreementId,
      title: `Agreement ${agreementId}`,
      kind: 'agreement',
      sector: SECTORS[i % SECTORS.length],
      parties: ['VEN', 'RUS'],
      signedAt: '2025-11-28',
      session: { name: 'CIAN XIX', date: '2025-11-28' },
      commitments: COMMITMENTS.map((id, n) => ({
        id,
        title: `Commitment ${id} of ${agreementId}`,
        dueDate: DUE,
        responsible: { party: n % 2 ? 'RUS' : 'VEN', institution: n % 2 ? 'Ministry of Health' : 'Ministerio del Poder Popular para la Salud' },
      })),
    },
  };
}

function onCommitment(kind: Exclude<Kind, 'create'>, agreementId: string, commitmentId: string, key: string, via: number, arg: number | string = 0): Command {
  const base = `/v1/agreements/${agreementId}/commitments/${commitmentId}`;
  const [path, body] =
    kind === 'progress' ? [`${base}/progress`, { percent: arg, note: key }]
    : kind === 'delay' ? [`${base}/delay`, { reason: key, newDueDate: arg }]
    : kind === 'implement' ? [`${base}/implementation`, { note: key }]
    : [`${base}/cancellation`, { reason: key }];
  return { key, kind, agreementId, commitmentId, path, body, via };
}

/**
 * 21 commands per agreement over its five commitments: progress reports (some racing on one
 * commitment), delays to distinct dates (a later one may lose its race and be refused), an
 * implementation and a cancellation that may overtake progress reports (which are then refused).
 */
function workload(ids: string[], random: () => number, apis: number): Command[] {
  const out: Command[] = [];
  const via = () => Math.floor(random() * apis);
  const pct = () => 1 + Math.floor(random() * 99);
  for (const id of ids) {
    for (let k = 0; k < 6; k++) out.push(onCommitment('progress', id, 'cm1', `${id}-cm1-p${k}`, via(), pct()));
    out.push(onCommitment('delay', id, 'cm2', `${id}-cm2-delay`, via(), '2100-01-31'));
    for (let k = 0; k < 3; k++) out.push(onCommitment('progress', id, 'cm2', `${id}-cm2-p${k}`, via(), pct()));
    for (let k = 0; k < 3; k++) out.push(onCommitment('progress', id, 'cm3', `${id}-cm3-p${k}`, via(), pct()));
    out.push(onCommitment('implement', id, 'cm3', `${id}-cm3-implement`, via()));
    for (let k = 0; k < 2; k++) out.push(onCommitment('progress', id, 'cm4', `${id}-cm4-p${k}`, via(), pct()));
    out.push(onCommitment('cancel', id, 'cm4', `${id}-cm4-cancel`, via()));
    out.push(onCommitment('delay', id, 'cm5', `${id}-cm5-delay1`, via(), '2100-03-31'));
    out.push(onCommitment('delay', id, 'cm5', `${id}-cm5-delay2`, via(), '2100-06-30'));
    for (let k = 0; k < 2; k++) out.push(onCommitment('progress', id, 'cm5', `${id}-cm5-p${k}`, via(), pct()));
  }
  return shuffle(out, random);
}

/** A burst of progress reports on every commitment of the given agreements (cm3/cm4 may be refused by then). */
function burst(ids: string[], label: string, random: () => number, apis: number): Command[] {
  return shuffle(
    ids.flatMap((id) => COMMITMENTS.map((cid) => onCommitment('progress', id, cid, `${id}-${cid}-${label}`, Math.floor(random() * apis), 1 + Math.floor(random() * 99)))),
    random,
  );
}

async function send(apis: Client[], command: Command): Promise<Outcome> {
  try {
    const reply = await apis[command.via]!.post(command.path, command.body, { 'idempotency-key': command.key });
    return { command, reply };
  } catch (err) {
    return { command, reply: null, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Sends `commands` with `workers` in parallel, each pausing up to `paceMs` between commands; records every outcome. */
async function runLoad(apis: Client[], commands: Command[], outcomes: Outcome[], workers: number, paceMs: number, random: () => number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < commands.length) {
        const command = commands[next++]!;
        outcomes.push(await send(apis, command));
        if (paceMs > 0) await sleep(random() * paceMs);
      }
    }),
  );
}

const ok = (o: Outcome) => o.reply !== null && o.reply.status >= 200 && o.reply.status < 300;

/** Every answer is 2xx, a refusal by a domain rule (409), or "stream busy" (503 after the conflict budget). */
function expectOnlyExpectedStatuses(outcomes: Outcome[]): void {
  const unexpected = outcomes.filter((o) => o.reply && !ok(o) && o.reply.status !== 409 && !(o.reply.status === 503 && o.reply.body?.code === 'stream_busy'));
  expect(unexpected.map((o) => `${o.command.key}: ${o.reply!.status} ${JSON.stringify(o.reply!.body)}`), 'unexpected answers').toEqual([]);
  for (const o of outcomes.filter((x) => x.command.kind === 'create')) expect(o.reply?.status, `${o.command.key}: ${JSON.stringify(o.reply?.body)}`).toBe(201);
}

function maxPosition(outcomes: Outcome[]): string {
  return outcomes.filter(ok).map((o) => BigInt(o.reply!.body.position as string)).reduce((a, b) => (a > b ? a : b), 0n).toString();
}

// ---- observing the cluster -----------------------------------------------------------------
type Readiness = { status: number; lag: number | null; head: string | null; checkpoint: string | null };

async function readiness(api: Client): Promise<Readiness> {
  try {
    const r = await api.get('/ready');
    const p = r.body?.projections?.[0];
    return { status: r.status, lag: p ? Number(p.lag) : null, head: p?.head ?? null, checkpoint: p?.checkpoint ?? null };
  } catch {
    return { status: 0, lag: null, head: null, checkpoint: null };
  }
}

async function allReady(apis: Client[]): Promise<boolean> {
  const rs = await Promise.all(apis.map(readiness));
  return rs.every((r) => r.status === 200 && r.lag === 0);
}

async function checkpointKey(r: Redis, ns: string): Promise<string> {
  return `${ns}:g${(await r.get(`${ns}:current`)) ?? '1'}:checkpoint`;
}

/** Polls the projection checkpoint in Redis and records every time it moves backwards. */
function watchCheckpoint(r: Redis, key: string, everyMs = 10) {
  const decreases: string[] = [];
  let last = 0n;
  let samples = 0;
  let active = true;
  const done = (async () => {
    while (active) {
      const v = await r.get(key).catch(() => null);
      if (v !== null) {
        const n = BigInt(v);
        samples++;
        if (n < last) decreases.push(`${last} -> ${n}`);
        if (n > last) last = n;
      }
      await sleep(everyMs);
    }
  })();
  return {
    decreases,
    samples: () => samples,
    async stop() {
      active = false;
      await done;
    },
  };
}

// ---- the verdict: read models against a fresh replay of the log ------------------------------
const tagOf = (e: HistoryEvent): string | undefined => (typeof e.data?.note === 'string' ? e.data.note : typeof e.data?.reason === 'string' ? e.data.reason : undefined);

const isCreationEvent = (e: HistoryEvent, i: number) => (i === 0 ? e.type === 'AgreementSigned' : i < CREATE_EVENTS && e.type === 'CommitmentAdded');

/**
 * For every agreement: the read model read through every api (after the last answered position)
 * equals GET ?asOf=now (the log folded directly) through every api, and stands at the stream's
 * last revision; every 2xx answer is in the history exactly once, at its revision and position;
 * nothing refused is there; the stream holds the creation, the 2xx answers and at most the
 * unanswered commands, each once. Lists, commitments and dashboard agree across apis and with the replays.
 */
async function verifyAgainstReplay(apis: Client[], ids: string[], outcomes: Outcome[]): Promise<void> {
  const after = maxPosition(outcomes);
  const byKey = new Map(outcomes.map((o) => [o.command.key, o]));
  expect(byKey.size, 'every command key is sent once').toBe(outcomes.length);
  // Every answer has been given, so every event of an answered command is recorded before this instant.
  await sleep(5);
  const asOf = new Date().toISOString();
  const replays = new Map<string, any>();

  for (const id of ids) {
    const history = await readHistory(apis[0]!, id);
    expect(history.map((e) => e.revision), `${id}: revisions 0..n without a gap or a repeat`).toEqual(history.map((_, i) => i));
    expect(history.slice(0, CREATE_EVENTS).every(isCreationEvent), `${id}: the creation comes first`).toBe(true);
    const last = history.at(-1)!;

    const [live, replay] = await Promise.all([
      Promise.all(apis.map((a) => a.get(`/v1/agreements/${id}?after=${after}`))),
      Promise.all(apis.map((a) => a.get(`/v1/agreements/${id}?asOf=${encodeURIComponent(asOf)}`))),
    ]);
    for (const r of [...live, ...replay]) expect(r.status, `${id}: ${JSON.stringify(r.body)}`).toBe(200);
    const { asOf: replayedAt, view: _view, evaluatedAt: _evaluatedAt, ...replayed } = replay[0]!.body;
    expect(replayedAt).toBe(asOf);
    for (let n = 1; n < replay.length; n++) expect(replay[n]!.body, `${id}: the replay through api ${n + 1} vs api 1`).toEqual(replay[0]!.body);
    replays.set(id, replayed);
    live.forEach((r, n) => {
      expect(r.body, `${id}: the read model served by api ${n + 1} equals a fresh replay of the stream`).toEqual(replayed);
      expect(r.body.revision, `${id}: the read model served by api ${n + 1} stands at the stream's last revision`).toBe(last.revision);
      expect(r.headers.get('etag')).toBe(`"${last.revision}"`);
    });

    // Every event after the creation belongs to exactly one command, answered 2xx or never answered.
    const mine = outcomes.filter((o) => o.command.agreementId === id);
    const tags = history.slice(CREATE_EVENTS).map((e) => ({ e, tag: tagOf(e) }));
    const seen = new Map<string, number>();
    for (const { e, tag } of tags) {
      expect(tag, `${id}@${e.revision}: an event no command of this test appended: ${JSON.stringify(e)}`).toBeDefined();
      seen.set(tag!, (seen.get(tag!) ?? 0) + 1);
      const o = byKey.get(tag!);
      expect(o?.command.agreementId, `${id}@${e.revision}: event ${tag} belongs to no command on this agreement`).toBe(id);
      expect(o!.reply === null || ok(o!), `${id}@${e.revision}: ${tag} was answered ${o!.reply?.status} (${JSON.stringify(o!.reply?.body)}) but is in the log`).toBe(true);
    }
    const doubled = [...seen].filter(([, n]) => n > 1);
    expect(doubled, `${id}: commands applied more than once`).toEqual([]);

    const answered = mine.filter(ok);
    for (const o of answered) {
      const at = o.reply!.body.revision as number;
      const event = history[at];
      expect(event, `${o.command.key}: answered revision ${at}, but the stream ends at ${last.revision}`).toBeDefined();
      if (o.command.kind === 'create') {
        expect(at).toBe(CREATE_EVENTS - 1);
        expect(history[0]!.data.title).toBe(o.command.body.title);
      } else {
        expect(tagOf(event!), `${o.command.key}: revision ${at} holds ${JSON.stringify(event)}`).toBe(o.command.key);
      }
      expect(event!.position, `${o.command.key}: answered position`).toBe(o.reply!.body.position);
    }
    const unanswered = mine.filter((o) => o.reply === null);
    const landedUnanswered = unanswered.filter((o) => seen.has(o.command.key)).length;
    const answeredUpdates = answered.filter((o) => o.command.kind !== 'create').length;
    expect(history.length, `${id}: events = creation + 2xx answers + unanswered that landed`).toBe(CREATE_EVENTS + answeredUpdates + landedUnanswered);
    expect(landedUnanswered).toBeLessThanOrEqual(unanswered.length);
  }

  // The lists, the commitments and the dashboard: the same through every api, and what the replays imply.
  const [lists, commitmentLists, dashboards] = await Promise.all([
    Promise.all(apis.map((a) => a.get(`/v1/agreements?after=${after}&limit=500`))),
    Promise.all(apis.map((a) => a.get(`/v1/commitments?after=${after}&limit=500`))),
    Promise.all(apis.map((a) => a.get(`/v1/dashboard?after=${after}`))),
  ]);
  for (const r of [...lists, ...commitmentLists, ...dashboards]) expect(r.status, JSON.stringify(r.body)).toBe(200);
  for (let n = 1; n < apis.length; n++) {
    expect(lists[n]!.body, `agreement list via api ${n + 1} vs api 1`).toEqual(lists[0]!.body);
    expect(commitmentLists[n]!.body, `commitment list via api ${n + 1} vs api 1`).toEqual(commitmentLists[0]!.body);
    expect(dashboards[n]!.body, `dashboard via api ${n + 1} vs api 1`).toEqual(dashboards[0]!.body);
  }

  const list = lists[0]!.body;
  expect(list.total).toBe(ids.length);
  expect(new Set(list.items.map((a: { id: string }) => a.id))).toEqual(new Set(ids));
  for (const item of list.items) {
    const r = replays.get(item.id);
    expect(item, `${item.id}: list summary vs replay`).toEqual(Object.fromEntries(Object.keys(item).map((k) => [k, r[k]])));
  }

  const commitments = commitmentLists[0]!.body;
  const expectedCommitments = [...replays.values()].flatMap((a) => a.commitments.map((c: any) => ({ ...c, agreementTitle: a.title, sector: a.sector })));
  expect(commitments.total, 'commitment total').toBe(expectedCommitments.length);
  const keyOf = (c: { agreementId: string; id: string }) => `${c.agreementId}/${c.id}`;
  const sortByKey = (xs: any[]) => [...xs].sort((x, y) => keyOf(x).localeCompare(keyOf(y)));
  expect(sortByKey(commitments.items), 'every commitment in the list is as replayed').toEqual(sortByKey(expectedCommitments));
  const order = commitments.items.map((c: any) => `${c.dueDate} ${c.id}`);
  expect(order, 'commitments sorted by due date then id').toEqual([...order].sort());

  const statusCounts = <S extends string>(all: readonly S[], values: S[]) => Object.fromEntries(all.map((s) => [s, values.filter((v) => v === s).length]));
  const AGREEMENT_STATUSES = ['signed', 'in_implementation', 'delayed', 'implemented', 'cancelled', 'terminated'] as const;
  const COMMITMENT_STATUSES = ['pending', 'in_progress', 'delayed', 'implemented', 'cancelled'] as const;
  const docs = [...replays.values()];
  const sectors = [...new Set(docs.map((a) => a.sector as string))];
  const dashboard = dashboards[0]!.body;
  expect(dashboard.agreements, 'dashboard agreements vs replays').toEqual({
    total: docs.length,
    byStatus: statusCounts(AGREEMENT_STATUSES, docs.map((a) => a.status)),
    bySector: Object.fromEntries(
      sectors.map((s) => {
        const inSector = docs.filter((a) => a.sector === s);
        return [s, { total: inSector.length, byStatus: statusCounts(AGREEMENT_STATUSES, inSector.map((a) => a.status)) }];
      }),
    ),
  });
  expect(dashboard.commitments, 'dashboard commitments vs replays').toEqual({
    total: expectedCommitments.length,
    byStatus: statusCounts(COMMITMENT_STATUSES, expectedCommitments.map((c) => c.status)),
    overdue: expectedCommitments.filter((c) => c.overdue).length,
  });

  // The log itself: every stream gap-free and hash-chained, the global log without a hole.
  await checkLog(apis[0]!);
}

// ---- the tests ---------------------------------------------------------------------------
describe('distributed roles on a shared log: crash safety with real processes', () => {
  it('SIGKILL of the projector holding the lease while two apis take commands: fail-over, nothing lost, nothing doubled', async () => {
    const cluster = newCluster();
    const r = redis!;
    const random = prng(20251128);
    const AGREEMENTS = 20;
    const ids = Array.from({ length: AGREEMENTS }, (_, i) => `dist-a${String(i).padStart(2, '0')}`);

    const projectors = await Promise.all([startProjector(cluster), startProjector(cluster)]);
    const apiProcesses = await Promise.all([startApi(cluster), startApi(cluster)]);
    const apis = apiProcesses.map((p) => client(p.url));
    const holderKey = `${cluster.namespace}:lease:ledger:holder`;
    await until('a projector holding the lease', async () => ((await r.get(holderKey)) && projectors.some((p) => leasesAcquired(p).length > 0) ? true : undefined), 10_000);

    // Twenty agreements, signed through both apis at once.
    const outcomes: Outcome[] = [];
    outcomes.push(...(await Promise.all(ids.map((id, i) => send(apis, create(id, i, i % 2))))));
    expectOnlyExpectedStatuses(outcomes);

    // The load: 420 commands over both apis, paced to last about ten seconds.
    const commands = workload(ids, random, apis.length);
    const load = runLoad(apis, commands, outcomes, 6, 150, random);

    // A quarter in, a burst of 100 commands lands at once; the lease holder dies when 15 of them are answered.
    await until('a quarter of the load answered', () => (outcomes.length >= AGREEMENTS + commands.length / 4 ? true : undefined), 30_000);
    const victimToken = (await r.get(holderKey))!;
    const victim = projectors.find((p) => leasesAcquired(p).includes(victimToken));
    expect(victim, `the holder ${victimToken} is one of our projectors`).toBeDefined();
    const survivor = projectors.find((p) => p !== victim)!;
    const burstCommands = burst(ids, 'burst', random, apis.length);
    let answeredInBurst = 0;
    let killedAt = 0;
    const burstDone = Promise.all(
      burstCommands.map((c) =>
        send(apis, c).then((o) => {
          if (++answeredInBurst === 15) {
            victim!.child.kill('SIGKILL');
            killedAt = performance.now();
          }
          outcomes.push(o);
        }),
      ),
    );
    await until('the burst to reach the kill', () => (killedAt > 0 ? true : undefined), 20_000, 1);
    const lagAtKill = await readiness(apis[0]!);
    const headAtKill = BigInt(lagAtKill.head ?? '0');

    // Fail-over: the other projector takes the lease, passes the head seen at the kill, and both apis are ready (lag 0).
    const cpKey = await checkpointKey(r, cluster.namespace);
    let leaseMs = -1;
    let caughtUpMs = -1;
    let readyMs = -1;
    let newToken = '';
    const deadline = performance.now() + 20_000;
    while ((leaseMs < 0 || caughtUpMs < 0 || readyMs < 0) && performance.now() < deadline) {
      const now = () => Math.round(performance.now() - killedAt);
      if (leaseMs < 0) {
        const holder = await r.get(holderKey);
        if (holder && holder !== victimToken && leasesAcquired(survivor).includes(holder)) {
          leaseMs = now();
          newToken = holder;
        }
      }
      if (leaseMs >= 0 && caughtUpMs < 0 && BigInt((await r.get(cpKey)) ?? '0') >= headAtKill) caughtUpMs = now();
      if (leaseMs >= 0 && readyMs < 0 && (await allReady(apis))) readyMs = now();
      await sleep(10);
    }
    const stillFlowing = outcomes.length < AGREEMENTS + commands.length + burstCommands.length;
    console.log(
      `[distributed-crash] fail-over after SIGKILL of the lease holder (lag at kill ${lagAtKill.lag ?? '?'} events, head ${headAtKill}): ` +
        `lease taken over in ${leaseMs} ms, projection past the head at the kill in ${caughtUpMs} ms, ` +
        `both apis /ready 200 with lag 0 in ${readyMs} ms (commands still flowing: ${stillFlowing})`,
    );
    expect(await victim!.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(leaseMs, 'the surviving projector took the lease over').toBeGreaterThanOrEqual(0);
    expect(leaseMs, 'lease fail-over (ms)').toBeLessThan(10_000);
    expect(caughtUpMs, 'the surviving projector projected what was in the log at the kill').toBeGreaterThanOrEqual(0);
    expect(readyMs, 'both apis ready with lag 0 after the fail-over').toBeGreaterThanOrEqual(0);
    // The new holder's fencing token is higher than the dead one's.
    expect(newToken > victimToken, `${newToken} > ${victimToken}`).toBe(true);

    await Promise.all([load, burstDone]);
    expect(outcomes).toHaveLength(AGREEMENTS + commands.length + burstCommands.length);
    expectOnlyExpectedStatuses(outcomes);
    const answered = outcomes.filter(ok).length;
    expect(answered, 'most commands were accepted').toBeGreaterThan(300);
    await until('both apis ready with lag 0 after the load', async () => ((await allReady(apis)) ? true : undefined), 20_000, 50);

    await verifyAgainstReplay(apis, ids, outcomes);
    // The survivor holds the lease still; nobody else took it.
    expect(await r.get(holderKey)).toBe(newToken);
    const failed = logLines(survivor).filter((l) => l.level >= 50);
    expect(failed.map((l) => l.msg), 'errors logged by the surviving projector').toEqual([]);
    console.log(
      `[distributed-crash] ${outcomes.length} commands (${answered} accepted, ${outcomes.filter((o) => o.reply?.status === 409).length} refused by a rule, ` +
        `${outcomes.filter((o) => o.reply?.status === 503).length} stream busy, ${outcomes.filter((o) => !o.reply).length} unanswered) on ${AGREEMENTS} agreements`,
    );
  }, 90_000);

  it('a stale lease holder cannot write: paused past its lease, resumed after another projector took over', async () => {
    const cluster = newCluster();
    const r = redis!;
    const random = prng(42);
    const ids = Array.from({ length: 6 }, (_, i) => `stale-a${i}`);
    const holderKey = `${cluster.namespace}:lease:ledger:holder`;

    const first = await startProjector(cluster);
    const firstToken = await until('the first projector to hold the lease', () => leasesAcquired(first)[0], 10_000);
    const api = client((await startApi(cluster)).url);
    const apis = [api];
    const outcomes: Outcome[] = [];
    outcomes.push(...(await Promise.all(ids.map((id, i) => send(apis, create(id, i, 0))))));
    expectOnlyExpectedStatuses(outcomes);
    const checkpoint = watchCheckpoint(r, await checkpointKey(r, cluster.namespace));

    try {
      const second = await startProjector(cluster);
      await sleep(1_200); // it has tried the lease at least once and found it held
      expect(leasesAcquired(second)).toEqual([]);

      // Pause the holder while a burst is being projected, so it may stop holding a loaded batch.
      let answered = 0;
      let pausedAt = 0;
      const wave1 = burst(ids, 'w1', random, 1);
      const wave1Done = Promise.all(
        wave1.map((c) =>
          send(apis, c).then((o) => {
            if (++answered === 5) {
              first.child.kill('SIGSTOP');
              pausedAt = performance.now();
            }
            outcomes.push(o);
          }),
        ),
      );
      await wave1Done;
      expect(pausedAt).toBeGreaterThan(0);

      // While it sleeps, commands keep coming; the lease expires (3 s) and the second projector takes over.
      const duringPause = runLoad(apis, burst(ids, 'w2', random, 1), outcomes, 3, 100, random);
      const secondToken = await until('the second projector to take the lease over', async () => {
        const held = leasesAcquired(second)[0];
        return held && (await r.get(holderKey)) === held ? held : undefined;
      }, 10_000);
      const takeoverMs = Math.round(performance.now() - pausedAt);
      expect(secondToken > firstToken, `fencing token ${secondToken} > ${firstToken}`).toBe(true);
      await duringPause;
      await until('the second projector to catch up', async () => ((await allReady(apis)) ? true : undefined), 10_000, 50);
      await verifyAgainstReplay(apis, ids, outcomes);
      const pausedMs = Math.round(performance.now() - pausedAt);

      // Resume the stale holder while new commands are being projected by the second one.
      const wave3 = burst(ids, 'w3', random, 1);
      let resumed = false;
      let answered3 = 0;
      await Promise.all(
        wave3.map((c) =>
          send(apis, c).then((o) => {
            if (++answered3 === 5) {
              first.child.kill('SIGCONT');
              resumed = true;
            }
            outcomes.push(o);
          }),
        ),
      );
      expect(resumed).toBe(true);
      const released = await until(
        'the resumed projector to notice that it lost the lease',
        () => logLines(first).find((l) => l.msg === 'projection lease released'),
        8_000,
        50,
      );
      expect(released.reason).toBe('lost (expired or taken over)');
      expect(first.child.exitCode, 'the resumed projector keeps running (as a standby)').toBeNull();

      // More commands after the resume: projected by the holder only, and still equal to the replay.
      await runLoad(apis, burst(ids, 'w4', random, 1), outcomes, 4, 20, random);
      await sleep(1_500); // time for the stale process to try anything it still had queued
      await until('caught up after the resume', async () => ((await allReady(apis)) ? true : undefined), 10_000, 50);
      expectOnlyExpectedStatuses(outcomes);
      await verifyAgainstReplay(apis, ids, outcomes);

      expect(await r.get(holderKey), 'the lease stays with the second projector').toBe(secondToken);
      expect(leasesAcquired(first), 'the stale holder did not take the lease back').toEqual([firstToken]);
      await checkpoint.stop();
      expect(checkpoint.samples()).toBeGreaterThan(50);
      expect(checkpoint.decreases, 'the checkpoint never moved backwards').toEqual([]);

      const refused = logLines(first).filter((l) => l.msg === 'projection batch failed; it will be retried');
      console.log(
        `[distributed-crash] stale holder: paused ${pausedMs} ms, lease taken over ${takeoverMs} ms after the pause; ` +
          `after SIGCONT it logged "${released.msg}" (${String(released.reason)})` +
          (refused.length
            ? ` and ${refused.length} refused write(s): ${JSON.stringify((refused[0]!.err as { message?: string })?.message)}`
            : ' and logged no refused write (a batch refused after the release ends its subscription silently)'),
      );
    } finally {
      await checkpoint.stop();
    }
  }, 90_000);
});
