// Rebuilds the Redis read models from the whole log into a fresh generation of keys while the
// live generation keeps serving (and its projector keeps writing), then points readers at the
// new generation in one step and drops the old one. With `check`, it compares instead of
// switching: the rebuilt documents are the reference, since the log is the only truth.
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { comparePositions, type EventStore, type Position, type StoredEvent } from '@cm/event-store';
import type { AgreementDoc, ReviewDoc } from './documents.js';
import { documentsNeeded, projectBatch } from './ledger-projection.js';
import { LeaseLostError, type Fence } from './read-store.js';
import { createRedisReadStore, dropGeneration } from './redis-read-store.js';

export type RebuildPhase = 'building' | 'catching-up' | 'comparing' | 'switching' | 'dropping' | 'done';

export type RebuildProgress = {
  phase: RebuildPhase;
  /** Events applied to the new generation so far. */
  events: number;
  /** The new generation's checkpoint. */
  position: Position | null;
  /** The log's head as last read: it moves while the live service appends. */
  head: Position | null;
  eventsPerSecond: number;
  /** Estimated from the positions still to go; null until there is a rate to estimate from. */
  etaSeconds: number | null;
};

export type RebuildDifference = {
  kind: 'agreement' | 'review' | 'dashboard';
  id: string;
  /** The first field that differs, or which side lacks the document. */
  description: string;
};

export type RebuildSummary = {
  events: number;
  /** Time spent building the new generation up to the switch (or the comparison); the drop is not counted. */
  seconds: number;
  eventsPerSecond: number;
  /** The rebuilt generation: live after a switch, already dropped after a check. */
  generation: number;
  previousGeneration: number;
  switched: boolean;
  checkpoint: Position | null;
  /** Keys of the old generation deleted after the switch. */
  droppedKeys: number;
  differences: RebuildDifference[];
  /** Check mode only. `exact`: both generations stood at the same checkpoint, so every document was compared. */
  compared?: { agreements: number; reviews: number; exact: boolean; liveCheckpoint: Position | null };
};

export type RebuildOptions = {
  eventStore: Pick<EventStore, 'readAll' | 'headPosition'>;
  redisUrl: string;
  namespace: string;
  logger: Logger;
  check?: boolean;
  /** Events per read and per commit. Large batches write each touched document once per batch. */
  batchSize?: number;
  onProgress?: (p: RebuildProgress) => void;
  /** Aborting stops between batches and deletes the unfinished generation; after the switch it is too late. */
  signal?: AbortSignal;
  /** Pause between the switch and the drop, so reads that resolved the old generation just before can finish. */
  dropDelayMs?: number;
  /** Check mode: how long to wait for a lagging live projector to reach the rebuilt checkpoint (3 s). */
  alignWaitMs?: number;
};

export class RebuildInProgressError extends Error {}
/**
 * Raised when the rebuild's lock expired (the process stood still past its lease) or was taken by
 * another rebuild: this one stops at once, has committed nothing since, switched nothing, and left
 * the next generation to whoever holds the lock now.
 */
export class RebuildLockLostError extends RebuildInProgressError {}
export class RebuildAbortedError extends Error {}

// Large: a log interleaved over many agreements then writes each touched document once per many events.
const DEFAULT_BATCH = 20_000;
const LOCK_TTL_MS = 30_000;
/** A live projector that keeps committing can beat the switch a few times; more means it never settles. */
const SWITCH_ATTEMPTS = 50;
const MAX_REPORTED = 1000;

// Positions are decimal bigints that may exceed 2^53: compare them as strings of digits, by length first.
// KEYS[3] the rebuild lock, ARGV[4] its token: a rebuild that lost its lock cannot switch.
const SWITCH_IF_CAUGHT_UP = `
if redis.call('get', KEYS[3]) ~= ARGV[4] then return {'fenced', redis.call('get', KEYS[3]) or ''} end
local cur = redis.call('get', KEYS[1]) or '1'
if cur ~= ARGV[1] then return {'moved', cur} end
local live = redis.call('get', KEYS[2])
local mine = ARGV[3]
if live and (mine == '' or #live > #mine or (#live == #mine and live > mine)) then return {'behind', live} end
redis.call('set', KEYS[1], ARGV[2])
return {'switched', ''}
`;
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export async function rebuildReadModels(options: RebuildOptions): Promise<RebuildSummary> {
  const { eventStore, namespace: ns, check = false } = options;
  const batchSize = options.batchSize ?? DEFAULT_BATCH;
  const dropDelayMs = options.dropDelayMs ?? 1000;
  const log = options.logger.child({ component: 'rebuild', namespace: ns });
  const control = new Redis(options.redisUrl, { maxRetriesPerRequest: 3 });
  control.on('error', (err: unknown) => log.debug({ err }, 'redis connection error'));

  // Two rebuilds would write the same next generation: one lock per namespace, renewed while working.
  const lockKey = `${ns}:rebuild:lock`;
  const token = `${process.pid}:${randomUUID()}`;
  if ((await control.set(lockKey, token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
    await control.quit().catch(() => undefined);
    throw new RebuildInProgressError(`another rebuild of namespace ${ns} is running (lock ${lockKey} is held)`);
  }
  let lockLost = false;
  // Every write of the rebuild (each batch, the switch, each drop) checks the lock in the same script.
  const fence: Fence = { key: lockKey, token };
  const lockLostError = (cause?: unknown) =>
    new RebuildLockLostError(`this rebuild lost the rebuild lock ${lockKey} (it expired while the process stood still, or another rebuild took it); it stopped, nothing was switched, and the next generation was left to the lock's holder`, { cause });
  /** Runs a write of the rebuild; a refused fence means the lock is lost. */
  const fenced = async <T>(write: () => Promise<T>): Promise<T> => {
    try {
      return await write();
    } catch (err) {
      if (err instanceof LeaseLostError) {
        lockLost = true;
        throw lockLostError(err);
      }
      throw err;
    }
  };
  const renew = setInterval(() => {
    control.eval(RENEW, 1, lockKey, token, String(LOCK_TTL_MS)).then(
      (ok) => {
        if (ok !== 1) lockLost = true;
      },
      (err: unknown) => log.warn({ err }, 'could not renew the rebuild lock'),
    );
  }, LOCK_TTL_MS / 3);
  renew.unref();

  let next: number | null = null;
  let switched = false;
  const stores: { close(): Promise<void> }[] = [];
  try {
    const liveGeneration = Number((await control.get(`${ns}:current`)) ?? '1');
    const nextGeneration = liveGeneration + 1;
    next = nextGeneration;
    const liveCheckpointKey = `${ns}:g${liveGeneration}:checkpoint`;
    const rebuilt = createRedisReadStore({ url: options.redisUrl, namespace: ns, generation: nextGeneration, documentCache: Number.POSITIVE_INFINITY });
    stores.push(rebuilt);

    // Leftovers of an interrupted rebuild would otherwise mix with this one.
    const leftovers = await fenced(() => dropGeneration(control, ns, nextGeneration, { fence }));
    if (leftovers) log.warn({ generation: nextGeneration, keys: leftovers }, 'dropped leftovers of an unfinished rebuild');

    // The new generation is written by this function alone, so what it committed is all it holds:
    // documents are served from memory instead of being read back from Redis for every batch.
    const cache = { agreements: new Map<string, AgreementDoc>(), reviews: new Map<string, ReviewDoc>() };
    let checkpoint: Position | null = null;
    let events = 0;
    let head = await eventStore.headPosition();
    let phase: RebuildPhase = 'building';
    const started = performance.now();
    const elapsed = () => (performance.now() - started) / 1000;
    const rate = () => (elapsed() > 0 ? events / elapsed() : 0);

    const progress = (): RebuildProgress => {
      let etaSeconds: number | null = null;
      if (checkpoint !== null && head !== null && elapsed() > 0) {
        const done = Number(BigInt(checkpoint));
        const left = Math.max(0, Number(BigInt(head) - BigInt(checkpoint)));
        etaSeconds = done > 0 ? left / (done / elapsed()) : null;
      }
      return { phase, events, position: checkpoint, head, eventsPerSecond: rate(), etaSeconds };
    };
    const report = (p: RebuildPhase) => {
      phase = p;
      options.onProgress?.(progress());
    };
    const ensureRunnable = () => {
      if (options.signal?.aborted) throw new RebuildAbortedError('the rebuild was interrupted before the switch; nothing was switched');
      if (lockLost) throw lockLostError();
    };
    const pick = <T>(from: Map<string, T>, ids: Iterable<string>) => {
      const out = new Map<string, T>();
      for (const id of ids) {
        const d = from.get(id);
        if (d) out.set(id, d);
      }
      return out;
    };

    const apply = async (batch: StoredEvent[]): Promise<void> => {
      const first = documentsNeeded(batch, new Map());
      const reviews = pick(cache.reviews, first.reviewIds);
      const { agreementIds } = documentsNeeded(batch, reviews);
      const changes = projectBatch({ agreements: pick(cache.agreements, agreementIds), reviews }, batch);
      const last = batch.at(-1)!.position;
      await fenced(() => rebuilt.commit(changes, last, { from: checkpoint, fence }));
      for (const [id, d] of changes.agreements) cache.agreements.set(id, d);
      for (const [id, d] of changes.reviews) cache.reviews.set(id, d);
      checkpoint = last;
      events += batch.length;
    };

    /** Applies the log up to its head (or `until`), batch by batch. */
    const catchUp = async (until: Position | null = null): Promise<void> => {
      for (;;) {
        ensureRunnable();
        let batch = await eventStore.readAll({ after: checkpoint, limit: batchSize });
        const full = batch.length === batchSize;
        if (until !== null) batch = batch.filter((e) => comparePositions(e.position, until) <= 0);
        if (batch.length === 0) return;
        await apply(batch);
        head = await eventStore.headPosition();
        report(phase);
        if (!full || (until !== null && comparePositions(checkpoint, until) >= 0)) return;
      }
    };

    const compareWithLive = async (): Promise<{ differences: RebuildDifference[]; compared: NonNullable<RebuildSummary['compared']> }> => {
      const liveStore = createRedisReadStore({ url: options.redisUrl, namespace: ns, generation: liveGeneration });
      stores.push(liveStore);
      // Bring both to the same checkpoint where possible: then presence and dashboards compare too.
      const waitUntil = Date.now() + (options.alignWaitMs ?? 3000);
      for (;;) {
        ensureRunnable();
        const liveAt = await liveStore.checkpoint();
        const order = comparePositions(liveAt, checkpoint);
        if (order > 0) await catchUp(liveAt);
        else if (order < 0 && Date.now() < waitUntil) await sleep(100);
        else break;
      }
      const liveBefore = await liveStore.checkpoint();
      const now = new Date().toISOString();
      const [liveAgreements, liveReviews, liveDashboard] = await Promise.all([liveStore.allAgreements(), liveStore.allReviews(), liveStore.dashboard(now)]);
      const liveAfter = await liveStore.checkpoint();
      const exact = liveBefore === liveAfter && comparePositions(liveBefore, checkpoint) === 0;
      const [mineAgreements, mineReviews, mineDashboard] = await Promise.all([rebuilt.allAgreements(), rebuilt.allReviews(), rebuilt.dashboard(now)]);

      const differences: RebuildDifference[] = [];
      const reviewRevisions = {
        live: new Map(liveReviews.map((d) => [d.review.id, d.revision])),
        mine: new Map(mineReviews.map((d) => [d.review.id, d.revision])),
      };
      // A review event rewrites the agreement's review list without moving the agreement's revision:
      // off a common checkpoint, that list is comparable only when its reviews stand at one revision.
      const reviewListComparable = (a: AgreementDoc, b: AgreementDoc) =>
        exact || [...a.reviews, ...b.reviews].every((r) => reviewRevisions.live.get(r.id) !== undefined && reviewRevisions.live.get(r.id) === reviewRevisions.mine.get(r.id));
      compareDocs('agreement', liveAgreements, mineAgreements, (d) => d.agreement.id, exact, differences, (a, b) =>
        reviewListComparable(a, b) ? firstDifference(a, b) : firstDifference({ ...a, reviews: [] }, { ...b, reviews: [] }),
      );
      compareDocs('review', liveReviews, mineReviews, (d) => d.review.id, exact, differences, (a, b) => firstDifference(a, b));
      if (exact) {
        const dash = firstDifference(liveDashboard, mineDashboard);
        if (dash) differences.push({ kind: 'dashboard', id: 'dashboard', description: `${dash} (indexes or counters out of step with the documents)` });
      }
      return {
        differences: differences.slice(0, MAX_REPORTED),
        compared: { agreements: liveAgreements.length, reviews: liveReviews.length, exact, liveCheckpoint: liveAfter },
      };
    };

    log.info({ from: liveGeneration, to: nextGeneration, head, check }, 'rebuilding the read models from the log into a new generation');
    report('building');
    await catchUp();
    const reachedHead = () => log.info({ generation: nextGeneration, events, checkpoint, seconds: +elapsed().toFixed(2), eventsPerSecond: Math.round(rate()) }, 'new generation reached the head of the log');

    if (check) {
      report('comparing');
      reachedHead();
      const outcome = await compareWithLive();
      const seconds = elapsed();
      await fenced(() => dropGeneration(control, ns, nextGeneration, { fence }));
      report('done');
      log.info({ differences: outcome.differences.length, ...outcome.compared }, 'check finished; the live read models were left as they were');
      for (const d of outcome.differences.slice(0, 20)) log.warn(d, 'live read model differs from the log');
      return {
        events, seconds, eventsPerSecond: events / seconds, generation: nextGeneration, previousGeneration: liveGeneration,
        switched: false, checkpoint, droppedKeys: 0, differences: outcome.differences, compared: outcome.compared,
      };
    }

    // Switch only once the new generation is at least as far as the live one. The live projector's
    // next commit follows `current`, and a store behind it would silently miss what lies between.
    report('switching');
    reachedHead();
    for (let attempt = 1; !switched; attempt++) {
      ensureRunnable();
      const [outcome, value] = (await control.eval(
        SWITCH_IF_CAUGHT_UP, 3, `${ns}:current`, liveCheckpointKey, lockKey, String(liveGeneration), String(nextGeneration), checkpoint ?? '', token,
      )) as [string, string];
      if (outcome === 'fenced') {
        lockLost = true;
        throw lockLostError();
      }
      if (outcome === 'switched') {
        switched = true;
      } else if (outcome === 'moved') {
        throw new Error(`the read models were switched to generation ${value} by someone else during the rebuild; generation ${nextGeneration} was not used`);
      } else {
        if (comparePositions(value, await eventStore.headPosition()) > 0) {
          throw new Error(`the live read models stand at position ${value}, beyond the head of this log: they were built from another log; not switching`);
        }
        if (attempt >= SWITCH_ATTEMPTS) throw new Error(`the live projector stayed ahead of the rebuild after ${attempt} attempts (live at ${value}, rebuilt at ${checkpoint ?? 'nothing'})`);
        phase = 'catching-up';
        await catchUp();
      }
    }
    const seconds = elapsed();
    log.info({ from: liveGeneration, to: nextGeneration, checkpoint }, 'readers switched to the rebuilt generation');
    report('dropping');
    if (dropDelayMs > 0) await sleep(dropDelayMs);
    // The switch stands either way: an old generation left behind costs memory, not correctness.
    // Fenced as well: a rebuild that lost its lock after the switch leaves the old generation behind.
    const droppedKeys = await dropGeneration(control, ns, liveGeneration, { fence }).catch((err: unknown) => {
      log.error({ err, generation: liveGeneration }, 'could not drop the previous generation; it is no longer read and can be dropped later');
      return 0;
    });
    log.info({ generation: liveGeneration, keys: droppedKeys }, 'dropped the previous generation');
    report('done');
    return {
      events, seconds, eventsPerSecond: events / seconds, generation: nextGeneration, previousGeneration: liveGeneration,
      switched: true, checkpoint, droppedKeys, differences: [],
    };
  } catch (err) {
    if (!switched && next !== null) {
      // An unfinished generation is of no use to anyone: leave the namespace as it was found.
      // Never the generation readers follow, should someone have pointed them at it meanwhile.
      // And never once the lock is lost: the generation may already be the next rebuild's (the drop is fenced).
      const unfinished = next;
      await (async () => {
        if (lockLost) return;
        if ((await control.get(`${ns}:current`)) !== String(unfinished)) await dropGeneration(control, ns, unfinished, { fence });
      })().catch((dropErr: unknown) => {
        if (dropErr instanceof LeaseLostError) lockLost = true;
        else log.error({ err: dropErr, generation: unfinished }, 'could not drop the unfinished generation');
      });
      if (lockLost) {
        log.error({ generation: unfinished, lock: lockKey }, 'the rebuild lost its lock: it stopped and left the unfinished generation to the lock\'s holder');
        // Whatever else went wrong, the lost lock is the reason to give: the next rebuild owns the namespace now.
        if (!(err instanceof RebuildLockLostError)) throw lockLostError(err);
      }
    }
    throw err;
  } finally {
    clearInterval(renew);
    await control.eval(RELEASE, 1, lockKey, token).catch((err: unknown) => log.warn({ err }, 'could not release the rebuild lock'));
    await Promise.allSettled([...stores.map((s) => s.close()), control.quit()]);
  }
}

function compareDocs<T extends { revision: number }>(
  kind: 'agreement' | 'review',
  liveDocs: T[],
  mineDocs: T[],
  idOf: (d: T) => string,
  exact: boolean,
  out: RebuildDifference[],
  diff: (live: T, mine: T) => string | null,
): void {
  const mine = new Map(mineDocs.map((d) => [idOf(d), d]));
  const seen = new Set<string>();
  for (const l of liveDocs) {
    const id = idOf(l);
    seen.add(id);
    const m = mine.get(id);
    if (!m) {
      if (exact) out.push({ kind, id, description: `only in the live read models (revision ${l.revision}); the log does not produce it` });
      continue;
    }
    // Different revisions only mean the two stand at different points of the log.
    if (m.revision !== l.revision) continue;
    const d = diff(l, m);
    if (d) out.push({ kind, id, description: d });
  }
  if (!exact) return;
  for (const [id, m] of mine) {
    if (!seen.has(id)) out.push({ kind, id, description: `missing from the live read models (the log gives revision ${m.revision})` });
  }
}

const show = (v: unknown) => {
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** The path of the first field that differs, with both values: live first, then as rebuilt. */
export function firstDifference(live: unknown, rebuilt: unknown, path = ''): string | null {
  if (Object.is(live, rebuilt)) return null;
  const bothObjects = typeof live === 'object' && live !== null && typeof rebuilt === 'object' && rebuilt !== null;
  if (bothObjects && Array.isArray(live) === Array.isArray(rebuilt)) {
    if (Array.isArray(live) && Array.isArray(rebuilt)) {
      for (let i = 0; i < Math.max(live.length, rebuilt.length); i++) {
        const d = firstDifference(live[i], rebuilt[i], `${path}[${i}]`);
        if (d) return d;
      }
      return null;
    }
    const a = live as Record<string, unknown>;
    const b = rebuilt as Record<string, unknown>;
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[key], b[key], path ? `${path}.${key}` : key);
      if (d) return d;
    }
    return null;
  }
  return `${path || 'value'}: live ${show(live)}, rebuilt ${show(rebuilt)}`;
}
