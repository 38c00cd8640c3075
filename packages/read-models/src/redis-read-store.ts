// The Redis read store: documents as JSON strings, and every list served from sorted-set
// indexes (lexicographic members encode the sort order), never by reading every document.
// A batch of documents, their index changes and the checkpoint go in one Lua script that first
// checks the projection lease (a projector that lost it cannot write), the generation, that the
// stored checkpoint is where the batch starts, and every key's type.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  awaitingRatification, deriveAgreementStatus, deriveLifecycle, type AgreementStatus, type CommitmentState, type CommitmentStatus, type ExistingAgreement,
} from '@cm/domain';
import { comparePositions, type Position } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc } from './documents.js';
import {
  UNDATED, awaitingByParty, decodeCursor, descDate, encodeCursor, foldText,
  type AgreementFilter, type CommitmentFilter, type CommitmentListItem, type Dashboard, type Page, type ReviewFilter,
} from './queries.js';
import {
  CheckpointMismatchError, GenerationChangedError, LeaseLostError, ReadModelsDamagedError, type CommitOptions, type Fence, type ReadStore,
} from './read-store.js';
import { agreementSummary, commitmentView, reviewView, type AgreementSummary, type ReviewView } from './views.js';

export type RedisReadStoreOptions = {
  url: string;
  /** Keys live under `<namespace>:g<generation>:`; a rebuild writes a new generation and switches. */
  namespace?: string;
  /** A fixed generation (rebuilds), or follow `<namespace>:current` (default). */
  generation?: number;
  /**
   * How many documents this store remembers as it last wrote them (0 by default), so a commit
   * need not read them back to know which index entries to move. Used only while Redis says this
   * very store made the last commit of the generation; a rebuild, which holds every document
   * anyway, passes Infinity.
   */
  documentCache?: number;
};

/** Old footprints of unchanged commitments cancel out: only commitments that are not the very same object are diffed. */
function changedCommitments(before: AgreementDoc, after: AgreementDoc): { before: CommitmentState[]; after: CommitmentState[] } | null {
  const b = before.agreement.commitments;
  const a = after.agreement.commitments;
  // Commitment entries carry the agreement's id and sector as well.
  if (b.length > a.length || before.agreement.sector !== after.agreement.sector || before.agreement.id !== after.agreement.id) return null;
  const out = { before: [] as CommitmentState[], after: [] as CommitmentState[] };
  for (let i = 0; i < a.length; i++) {
    const x = b[i];
    const y = a[i]!;
    if (x === y) continue;
    if (x && x.id !== y.id) return null;
    if (x) out.before.push(x);
    out.after.push(y);
  }
  return out;
}

// Declared with the port (the memory store raises them too); re-exported where they always were.
export { GenerationChangedError, LeaseLostError } from './read-store.js';

/** Arguments per command the commit script sends at once (Lua's unpack has a stack limit). */
const SCRIPT_CHUNK = 1000;

/**
 * A batch as one script: KEYS[1] checkpoint, [2] writer, [3] damaged, [4] `<ns>:current`,
 * [5] the fence key, then the keys the batch writes; ARGV[1] from ('' for none), [2] the new
 * checkpoint, [3] the writer id, [4] the fence token ('' for none), [5] the generation `current`
 * must name ('' for a store on a fixed generation), then the writes: command, key index, count,
 * arguments. Everything is checked before the first write. Redis does not roll back a script
 * either, so a write that still fails marks the generation damaged and leaves the checkpoint where
 * it was: the batch is neither lost silently nor retried over half-written documents.
 */
const COMMIT_BATCH = `
if ARGV[4] ~= '' then
  local holder = redis.call('get', KEYS[5])
  if holder ~= ARGV[4] then return {'fenced', holder or ''} end
end
if ARGV[5] ~= '' then
  local cur = redis.call('get', KEYS[4]) or '1'
  if cur ~= ARGV[5] then return {'moved', cur} end
end
local damaged = redis.call('get', KEYS[3])
if damaged then return {'damaged', damaged} end
local function damage(reason)
  redis.call('set', KEYS[3], reason)
  return {'damaged', reason}
end
local stored = redis.call('get', KEYS[1])
local from, to = ARGV[1], ARGV[2]
if not stored then
  if redis.call('exists', KEYS[2]) == 1 then return damage('its checkpoint is missing although it was written to (evicted?)') end
  if from ~= '' then return {'mismatch', ''} end
elseif stored ~= from then
  -- Positions are decimal strings that may exceed 2^53: by length, then by digits.
  if #stored > #to or (#stored == #to and stored >= to) then return {'noop', stored} end
  return {'mismatch', stored}
end
local want = {zadd = 'zset', zrem = 'zset', hincrby = 'hash', hset = 'hash', hdel = 'hash', sadd = 'set'}
local seen = {}
local i = 6
while i <= #ARGV do
  local k, w = tonumber(ARGV[i + 1]), want[ARGV[i]]
  if w and not seen[k] then
    seen[k] = true
    local t = redis.call('type', KEYS[k])['ok']
    if t ~= 'none' and t ~= w then return damage(KEYS[k] .. ' holds a ' .. t .. ' where a ' .. w .. ' belongs') end
  end
  i = i + 3 + tonumber(ARGV[i + 2])
end
i = 6
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  local r = redis.pcall(ARGV[i], KEYS[tonumber(ARGV[i + 1])], unpack(ARGV, i + 3, i + 2 + n))
  if type(r) == 'table' and r['err'] then
    return damage('a write of the batch up to ' .. to .. ' failed half-way: ' .. ARGV[i] .. ' ' .. KEYS[tonumber(ARGV[i + 1])] .. ': ' .. r['err'])
  end
  i = i + 3 + n
end
-- Every commit names its writer, so no other store keeps using what it remembers.
redis.call('mset', KEYS[2], ARGV[3], KEYS[1], to)
return {'applied', ''}
`;

type ScriptedRedis = Redis & { commitBatch(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<unknown> };

const AGREEMENT_STATUSES: AgreementStatus[] = ['signed', 'in_implementation', 'delayed', 'implemented', 'cancelled', 'terminated'];
const COMMITMENT_STATUSES: CommitmentStatus[] = ['pending', 'in_progress', 'delayed', 'implemented', 'cancelled'];
/** Statuses whose agreements turn `delayed` when an open commitment's due date passes. */
const CAN_FALL_OVERDUE = ['signed', 'in_implementation'] as const;
const SEP = '!'; // sorts below every slug character, so "abc!" < "abc-d!" as "abc" < "abc-d"
const PAST = '0001-01-01T00:00:00.000Z';
const DAY_MS = 86_400_000;

const dayNumber = (isoDate: string) => Math.floor(Date.parse(`${isoDate.slice(0, 10)}T00:00:00Z`) / DAY_MS);
const agreementMember = (a: ExistingAgreement) => `${descDate(a.signedAt)}${SEP}${a.id}`;
const commitmentMember = (dueDate: string, cid: string, aid: string) => `${dueDate}${SEP}${cid}${SEP}${aid}`;

type IndexEntry = { key: string; member: string; score: number };
type Footprint = { entries: IndexEntry[]; counters: Map<string, number>; hashes: { key: string; field: string; value: string }[]; sets: { key: string; member: string }[] };

/**
 * Everything a document contributes to the indexes: removed as a whole and re-added on change.
 * `only`: the commitments whose part to include (all by default). Commitment members are unique
 * within an agreement (ids are), so leaving the same unchanged commitments out of both sides of
 * a diff leaves the diff as it was.
 */
function agreementFootprint(doc: AgreementDoc, only: readonly CommitmentState[] = doc.agreement.commitments): Footprint {
  const a = doc.agreement;
  const m = agreementMember(a);
  const staticStatus = deriveAgreementStatus(a, PAST);
  const entries: IndexEntry[] = [
    { key: 'a:all', member: m, score: 0 },
    { key: `a:sector:${a.sector}`, member: m, score: 0 },
    { key: `a:static:${staticStatus}`, member: m, score: 0 },
    ...a.parties.map((p) => ({ key: `a:party:${p}`, member: m, score: 0 })),
  ];
  if (a.session) entries.push({ key: `a:session:${a.session.name}`, member: m, score: 0 });
  // Lifecycle dates are never in the future: only a denunciation's effect (a:ends) is judged by the reads.
  entries.push({ key: `a:life:${deriveLifecycle(a, PAST)}`, member: m, score: 0 });
  for (const party of awaitingRatification(a, PAST)) entries.push({ key: 'a:await:all', member: `${party}${SEP}${m}`, score: 0 });
  // A pending denunciation terminates the agreement at effectiveAt with no event: judged by the reads.
  if (a.denunciation && !a.terminated) entries.push({ key: 'a:ends', member: m, score: Date.parse(a.denunciation.effectiveAt) });
  const open = a.commitments.filter((c) => c.status !== 'implemented' && c.status !== 'cancelled' && c.dueDate !== null);
  if ((CAN_FALL_OVERDUE as readonly string[]).includes(staticStatus) && open.length > 0) {
    const earliest = Math.min(...open.map((c) => dayNumber(c.dueDate!)));
    entries.push({ key: `a:due:${staticStatus}`, member: m, score: earliest }, { key: `a:due:${a.sector}:${staticStatus}`, member: m, score: earliest });
  }
  const counters = new Map<string, number>([
    ['a:count|total', 1],
    [`a:count|st:${staticStatus}`, 1],
    [`a:count|sec:${a.sector}:total`, 1],
    [`a:count|sec:${a.sector}:st:${staticStatus}`, 1],
  ]);
  const sets: Footprint['sets'] = [];
  for (const c of only) {
    const cm = commitmentMember(c.dueDate ?? UNDATED, c.id, a.id);
    const inst = foldText(c.responsible.institution);
    entries.push(
      { key: 'c:all', member: cm, score: 0 },
      { key: `c:status:${c.status}`, member: cm, score: 0 },
      { key: `c:party:${c.responsible.party}`, member: cm, score: 0 },
      { key: `c:sector:${a.sector}`, member: cm, score: 0 },
      { key: `c:agreement:${a.id}`, member: cm, score: 0 },
      { key: `c:inst:${inst}`, member: cm, score: 0 },
    );
    if (c.status !== 'implemented' && c.status !== 'cancelled') entries.push({ key: 'c:open', member: cm, score: 0 });
    sets.push({ key: 'c:institutions', member: inst });
    counters.set('c:count|total', (counters.get('c:count|total') ?? 0) + 1);
    counters.set(`c:count|st:${c.status}`, (counters.get(`c:count|st:${c.status}`) ?? 0) + 1);
    for (const ms of c.milestones ?? []) {
      counters.set('c:count|ms:total', (counters.get('c:count|ms:total') ?? 0) + 1);
      counters.set(`c:count|ms:${ms.status}`, (counters.get(`c:count|ms:${ms.status}`) ?? 0) + 1);
    }
  }
  return { entries, counters, hashes: [{ key: 'a:titles', field: a.id, value: `${m}\n${foldText(a.title)}` }], sets };
}

function reviewFootprint(doc: ReviewDoc): Footprint {
  const r = doc.review;
  const score = Date.parse(r.scheduledFor);
  return {
    entries: [
      { key: 'r:all', member: r.id, score },
      { key: `r:status:${r.status}`, member: r.id, score },
      ...r.agreementIds.map((id) => ({ key: `r:agreement:${id}`, member: r.id, score })),
    ],
    counters: new Map(),
    hashes: [],
    sets: [],
  };
}

export function createRedisReadStore(options: RedisReadStoreOptions): ReadStore & { readonly redis: Redis; generation(): Promise<number> } {
  const ns = options.namespace ?? 'cm';
  const redis = new Redis(options.url, { maxRetriesPerRequest: 3, lazyConnect: false });
  // Writes get their own connection: a large batch's script does not hold up queries queued behind it.
  const writer = redis.duplicate();
  writer.defineCommand('commitBatch', { lua: COMMIT_BATCH });
  redis.on('error', () => undefined);
  writer.on('error', () => undefined);
  const listeners = new Set<(p: Position) => void>();
  let tmpSeq = 0;
  // What this store last wrote, valid while `<prefix>writer` still names this store.
  const writerId = `${process.pid}:${randomUUID()}`;
  const cacheLimit = options.documentCache ?? 0;
  const cache = { generation: -1, agreements: new Map<string, AgreementDoc>(), reviews: new Map<string, ReviewDoc>() };
  const forget = () => {
    cache.generation = -1;
    cache.agreements.clear();
    cache.reviews.clear();
  };
  const remember = <T>(m: Map<string, T>, id: string, doc: T) => {
    if (cacheLimit !== Number.POSITIVE_INFINITY) m.delete(id);
    m.set(id, doc);
    // Oldest first out, once over the limit.
    while (m.size > cacheLimit) m.delete(m.keys().next().value!);
  };

  async function generation(): Promise<number> {
    if (options.generation !== undefined) return options.generation;
    const g = await redis.get(`${ns}:current`);
    return g ? Number(g) : 1;
  }
  const prefixOf = (g: number) => `${ns}:g${g}:`;
  const tmpKey = (p: string) => `${p}tmp:${process.pid}:${Date.now()}:${tmpSeq++}`;

  async function getDocs<T>(p: string, kind: 'a' | 'r', ids: Iterable<string>): Promise<Map<string, T>> {
    const list = [...new Set(ids)];
    const out = new Map<string, T>();
    if (list.length === 0) return out;
    const values = await redis.mget(list.map((id) => `${p}${kind}:${id}`));
    values.forEach((v, i) => {
      if (v) out.set(list[i]!, JSON.parse(v) as T);
    });
    return out;
  }

  /** Queues commands that leave in `dest` the agreements matching the filter's status and indexes. */
  function agreementCandidates(m: ReturnType<Redis['multi']>, p: string, f: AgreementFilter, now: string, dest: string, temps: string[], titleMatches: string[] | null): void {
    const sets: string[] = [`${p}a:all`];
    if (f.sector) sets.push(`${p}a:sector:${f.sector}`);
    if (f.party) sets.push(`${p}a:party:${f.party}`);
    if (f.session) sets.push(`${p}a:session:${f.session}`);
    if (titleMatches) {
      const t = tmpKey(p);
      temps.push(t);
      m.del(t);
      if (titleMatches.length) m.zadd(t, ...titleMatches.flatMap((member) => [0, member]));
      sets.push(t);
    }
    if (f.status) {
      const status = tmpKey(p);
      temps.push(status);
      const overdueBefore = `(${dayNumber(now)}`;
      if (f.status === 'delayed') {
        const parts = [`${p}a:static:delayed`];
        for (const s of CAN_FALL_OVERDUE) {
          const t = tmpKey(p);
          temps.push(t);
          m.zrangestore(t, `${p}a:due:${s}`, '-inf', overdueBefore, 'BYSCORE');
          parts.push(t);
        }
        m.zunionstore(status, parts.length, ...parts, 'WEIGHTS', ...parts.map(() => 0));
      } else if ((CAN_FALL_OVERDUE as readonly string[]).includes(f.status)) {
        const overdue = tmpKey(p);
        temps.push(overdue);
        m.zrangestore(overdue, `${p}a:due:${f.status}`, '-inf', overdueBefore, 'BYSCORE');
        m.zdiffstore(status, 2, `${p}a:static:${f.status}`, overdue);
      } else {
        m.zunionstore(status, 1, `${p}a:static:${f.status}`);
      }
      const ended = tmpKey(p);
      temps.push(ended);
      m.zrangestore(ended, `${p}a:ends`, '-inf', Date.parse(now), 'BYSCORE');
      if (f.status === 'terminated') m.zunionstore(status, 2, status, ended, 'WEIGHTS', 0, 0);
      else m.zdiffstore(status, 2, status, ended);
      sets.push(status);
    }
    if (f.lifecycle) {
      const life = tmpKey(p);
      const ended = tmpKey(p);
      temps.push(life, ended);
      m.zrangestore(ended, `${p}a:ends`, '-inf', Date.parse(now), 'BYSCORE');
      if (f.lifecycle === 'terminated') m.zunionstore(life, 2, `${p}a:life:terminated`, ended, 'WEIGHTS', 0, 0);
      else m.zdiffstore(life, 2, `${p}a:life:${f.lifecycle}`, ended);
      sets.push(life);
    }
    m.zinterstore(dest, sets.length, ...sets, 'WEIGHTS', ...sets.map(() => 0));
  }

  async function execOrThrow(m: ReturnType<Redis['multi']>): Promise<unknown[]> {
    const res = await m.exec();
    if (!res) throw new Error('redis transaction was aborted');
    return res.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }

  return {
    redis,
    generation,

    async checkpoint() {
      return redis.get(`${prefixOf(await generation())}checkpoint`);
    },

    async getAgreements(ids) {
      return getDocs<AgreementDoc>(prefixOf(await generation()), 'a', ids);
    },

    async getReviews(ids) {
      return getDocs<ReviewDoc>(prefixOf(await generation()), 'r', ids);
    },

    async allAgreements() {
      const p = prefixOf(await generation());
      const ids = (await redis.zrange(`${p}a:all`, '0', '-1')).map((m) => m.slice(m.indexOf(SEP) + 1));
      return [...(await getDocs<AgreementDoc>(p, 'a', ids)).values()];
    },

    async allReviews() {
      const p = prefixOf(await generation());
      return [...(await getDocs<ReviewDoc>(p, 'r', await redis.zrange(`${p}r:all`, '0', '-1'))).values()];
    },

    async commit(changes: ProjectionChanges, checkpoint: Position, commitOptions: CommitOptions) {
      const g = await generation();
      const p = prefixOf(g);
      const { from, fence } = commitOptions;
      try {
        // Read for early answers and to know what this store's cache is worth; the script checks
        // all of it again where nothing can change in between.
        const [current = null, lastWriter = null, damaged = null, fenceToken = null] = await redis.mget(`${p}checkpoint`, `${p}writer`, `${p}damaged`, fence ? fence.key : `${p}checkpoint`);
        if (fence && fenceToken !== fence.token) throw new LeaseLostError(`projection lease ${fence.key} is no longer held by ${fence.token}`);
        if (options.generation === undefined && (await generation()) !== g) throw new GenerationChangedError(`the read models were switched from generation ${g}`);
        if (damaged !== null) throw new ReadModelsDamagedError(`generation ${g}: ${damaged}`);
        if (current !== from) {
          // Already applied further by a previous holder of the lease (or a retry of this very batch).
          if (current !== null && comparePositions(current, checkpoint) >= 0) return;
          if (current !== null || lastWriter === null) throw new CheckpointMismatchError(from, checkpoint, current);
          // No checkpoint in a generation that was written to: left to the script, which marks it damaged.
        }
        if (cacheLimit === 0 || cache.generation !== g || lastWriter !== writerId) forget();
        const ids = { a: [...changes.agreements.keys()], r: [...changes.reviews.keys()] };
        const unknown = { a: ids.a.filter((id) => !cache.agreements.has(id)), r: ids.r.filter((id) => !cache.reviews.has(id)) };
        const [oldA, oldR] = await Promise.all([
          unknown.a.length ? redis.mget(unknown.a.map((id) => `${p}a:${id}`)) : Promise.resolve([]),
          unknown.r.length ? redis.mget(unknown.r.map((id) => `${p}r:${id}`)) : Promise.resolve([]),
        ]);
        const stored = {
          a: new Map(unknown.a.map((id, i) => [id, oldA[i] ? (JSON.parse(oldA[i]!) as AgreementDoc) : null])),
          r: new Map(unknown.r.map((id, i) => [id, oldR[i] ? (JSON.parse(oldR[i]!) as ReviewDoc) : null])),
        };
        // Only what changed between the old and the new footprint is written: a progress report
        // moves one or two index entries, not every entry of the agreement (10x fewer commands).
        // Changes are gathered per key and sent as one command each (ZADD k s1 m1 s2 m2 ...): no two
        // documents share a member or a hash field, so the order between documents does not matter.
        const zadd = new Map<string, (string | number)[]>();
        const zrem = new Map<string, string[]>();
        const hincr = new Map<string, number>();
        const hset = new Map<string, string[]>();
        const hdel = new Map<string, string[]>();
        const sadd = new Map<string, Set<string>>();
        const push = <T>(into: Map<string, T[]>, key: string, ...values: T[]) => {
          const list = into.get(key);
          if (list) list.push(...values);
          else into.set(key, values);
        };
        const apply = (before: Footprint | null, after: Footprint) => {
          const gone = new Map((before?.entries ?? []).map((e) => [`${e.key}\n${e.member}`, e]));
          for (const e of after.entries) {
            const id = `${e.key}\n${e.member}`;
            if (gone.get(id)?.score !== e.score) push(zadd, e.key, e.score, e.member);
            gone.delete(id);
          }
          for (const e of gone.values()) push(zrem, e.key, e.member);
          for (const k of new Set([...(before?.counters.keys() ?? []), ...after.counters.keys()])) {
            const delta = (after.counters.get(k) ?? 0) - (before?.counters.get(k) ?? 0);
            if (delta !== 0) hincr.set(k, (hincr.get(k) ?? 0) + delta);
          }
          const oldHashes = new Map((before?.hashes ?? []).map((h) => [`${h.key}\n${h.field}`, h]));
          for (const h of after.hashes) {
            const id = `${h.key}\n${h.field}`;
            if (oldHashes.get(id)?.value !== h.value) push(hset, h.key, h.field, h.value);
            oldHashes.delete(id);
          }
          for (const h of oldHashes.values()) push(hdel, h.key, h.field);
          const oldSets = new Set((before?.sets ?? []).map((x) => `${x.key}\n${x.member}`));
          for (const x of after.sets) {
            if (oldSets.has(`${x.key}\n${x.member}`)) continue;
            let members = sadd.get(x.key);
            if (!members) sadd.set(x.key, (members = new Set()));
            members.add(x.member);
          }
        };
        const documents: string[] = [];
        for (const id of ids.a) {
          const old = cache.agreements.get(id) ?? stored.a.get(id) ?? null;
          const doc = changes.agreements.get(id)!;
          // A remembered document shares its unchanged commitments with the new one (the projection keeps them).
          const changed = old && cache.agreements.has(id) ? changedCommitments(old, doc) : null;
          if (changed) apply(agreementFootprint(old!, changed.before), agreementFootprint(doc, changed.after));
          else apply(old ? agreementFootprint(old) : null, agreementFootprint(doc));
          documents.push(`${p}a:${id}`, JSON.stringify(doc));
        }
        for (const id of ids.r) {
          const old = cache.reviews.get(id) ?? stored.r.get(id) ?? null;
          const doc = changes.reviews.get(id)!;
          apply(old ? reviewFootprint(old) : null, reviewFootprint(doc));
          documents.push(`${p}r:${id}`, JSON.stringify(doc));
        }
        // One script checks the fence, the generation, the checkpoint and every key's type before it
        // writes anything: a MULTI/EXEC would go on past a failed command and move the checkpoint.
        const keys = [`${p}checkpoint`, `${p}writer`, `${p}damaged`, `${ns}:current`, fence ? fence.key : `${p}checkpoint`];
        const args: (string | number)[] = [from ?? '', checkpoint, writerId, fence ? fence.token : '', options.generation === undefined ? String(g) : ''];
        const op = (name: string, key: string, values: (string | number)[]) => {
          keys.push(key);
          for (let i = 0; i < values.length; i += SCRIPT_CHUNK) {
            const part = values.slice(i, i + SCRIPT_CHUNK);
            args.push(name, keys.length, part.length, ...part);
          }
        };
        for (const [key, members] of zrem) op('zrem', `${p}${key}`, members);
        for (const [key, values] of zadd) op('zadd', `${p}${key}`, values);
        for (const [k, delta] of hincr) {
          const [key, field] = k.split('|') as [string, string];
          op('hincrby', `${p}${key}`, [field, delta]);
        }
        for (const [key, fields] of hdel) op('hdel', `${p}${key}`, fields);
        for (const [key, values] of hset) op('hset', `${p}${key}`, values);
        for (const [key, members] of sadd) op('sadd', `${p}${key}`, [...members]);
        for (let i = 0; i < documents.length; i += 2) op('set', documents[i]!, [documents[i + 1]!]);
        const [outcome, detail] = (await (writer as ScriptedRedis).commitBatch(keys.length, ...keys, ...args)) as [string, string];
        if (outcome === 'fenced') throw new LeaseLostError(`projection lease ${fence?.key} is no longer held by ${fence?.token}; the batch was not written`);
        if (outcome === 'moved') throw new GenerationChangedError(`the read models were switched from generation ${g} to ${detail}`);
        if (outcome === 'damaged') throw new ReadModelsDamagedError(`generation ${g}: ${detail}`);
        if (outcome === 'mismatch') throw new CheckpointMismatchError(from, checkpoint, detail === '' ? null : detail);
        if (outcome === 'noop') return;
        if (cacheLimit > 0) {
          cache.generation = g;
          for (const [id, d] of changes.agreements) remember(cache.agreements, id, d);
          for (const [id, d] of changes.reviews) remember(cache.reviews, id, d);
        }
      } catch (err) {
        forget();
        throw err;
      }
      for (const l of listeners) l(checkpoint);
    },

    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async listAgreements(f: AgreementFilter, now: string): Promise<Page<AgreementSummary>> {
      const p = prefixOf(await generation());
      const after = decodeCursor(f.cursor, 2);
      let titleMatches: string[] | null = null;
      if (f.q) {
        const q = foldText(f.q);
        titleMatches = Object.values(await redis.hgetall(`${p}a:titles`))
          .filter((v) => v.slice(v.indexOf('\n') + 1).includes(q))
          .map((v) => v.slice(0, v.indexOf('\n')));
      }
      const temps: string[] = [];
      const dest = tmpKey(p);
      temps.push(dest);
      const m = redis.multi();
      agreementCandidates(m, p, f, now, dest, temps, titleMatches);
      m.zcard(dest);
      m.zrange(dest, after ? `(${after.join(SEP)}` : '-', '+', 'BYLEX', 'LIMIT', 0, f.limit + 1);
      m.del(...temps);
      const res = await execOrThrow(m);
      const total = res.at(-3) as number;
      const members = res.at(-2) as string[];
      const page = members.slice(0, f.limit);
      const docs = await getDocs<AgreementDoc>(p, 'a', page.map((x) => x.slice(x.indexOf(SEP) + 1)));
      const items = page.flatMap((x) => {
        const d = docs.get(x.slice(x.indexOf(SEP) + 1));
        return d ? [agreementSummary(d, now)] : [];
      });
      const last = page.at(-1);
      return { items, total, nextCursor: members.length > f.limit && last ? encodeCursor(last.split(SEP)) : null };
    },

    async listCommitments(f: CommitmentFilter, now: string): Promise<Page<CommitmentListItem>> {
      const p = prefixOf(await generation());
      const after = decodeCursor(f.cursor, 3);
      const temps: string[] = [];
      const m = redis.multi();
      const sets: string[] = [`${p}c:all`];
      if (f.status) sets.push(`${p}c:status:${f.status}`);
      if (f.party) sets.push(`${p}c:party:${f.party}`);
      if (f.sector) sets.push(`${p}c:sector:${f.sector}`);
      if (f.agreementId) sets.push(`${p}c:agreement:${f.agreementId}`);
      if (f.institution) {
        const needle = foldText(f.institution);
        const names = (await redis.smembers(`${p}c:institutions`)).filter((n) => n.includes(needle));
        const t = tmpKey(p);
        temps.push(t);
        if (names.length) m.zunionstore(t, names.length, ...names.map((n) => `${p}c:inst:${n}`));
        else m.del(t);
        sets.push(t);
      }
      const today = now.slice(0, 10);
      if (f.overdue) {
        const overdue = tmpKey(p);
        temps.push(overdue);
        m.zrangestore(overdue, `${p}c:open`, '-', `(${today}`, 'BYLEX');
        if (f.overdue === 'true') sets.push(overdue);
        else {
          const notOverdue = tmpKey(p);
          temps.push(notOverdue);
          m.zdiffstore(notOverdue, 2, `${p}c:all`, overdue);
          sets.push(notOverdue);
        }
      }
      const dest = tmpKey(p);
      temps.push(dest);
      m.zinterstore(dest, sets.length, ...sets, 'WEIGHTS', ...sets.map(() => 0));
      // Due-date bounds are exclusive: members start with the date, then the separator.
      const min = f.dueAfter ? `(${f.dueAfter}${SEP}\x7f` : '-';
      // A pending date (UNDATED, after every digit) is neither before nor after a day.
      const max = f.dueBefore ? `(${f.dueBefore}` : f.dueAfter ? `(${UNDATED}` : '+';
      m.zlexcount(dest, min, max);
      const from = after ? `(${after.join(SEP)}` : min;
      const start = after && min !== '-' && `(${after.join(SEP)}` < min ? min : from;
      m.zrange(dest, start, max, 'BYLEX', 'LIMIT', 0, f.limit + 1);
      m.del(...temps);
      const res = await execOrThrow(m);
      const total = res.at(-3) as number;
      const members = res.at(-2) as string[];
      const page = members.slice(0, f.limit).map((x) => x.split(SEP) as [string, string, string]);
      const docs = await getDocs<AgreementDoc>(p, 'a', page.map(([, , aid]) => aid));
      const items = page.flatMap(([, cid, aid]) => {
        const d = docs.get(aid);
        const c = d?.agreement.commitments.find((x) => x.id === cid);
        return d && c ? [{ ...commitmentView(c, now), agreementTitle: d.agreement.title, sector: d.agreement.sector }] : [];
      });
      const last = page.at(-1);
      return { items, total, nextCursor: members.length > f.limit && last ? encodeCursor(last) : null };
    },

    async listReviews(f: ReviewFilter): Promise<{ items: ReviewView[] }> {
      const p = prefixOf(await generation());
      const sets = [`${p}r:all`];
      if (f.status) sets.push(`${p}r:status:${f.status}`);
      if (f.agreementId) sets.push(`${p}r:agreement:${f.agreementId}`);
      const dest = tmpKey(p);
      const m = redis.multi();
      m.zinterstore(dest, sets.length, ...sets, 'WEIGHTS', 1, ...sets.slice(1).map(() => 0));
      m.zrange(dest, f.from ? String(Date.parse(f.from)) : '-inf', f.to ? String(Date.parse(f.to)) : '+inf', 'BYSCORE');
      m.del(dest);
      const res = await execOrThrow(m);
      const ids = res[1] as string[];
      const docs = await getDocs<ReviewDoc>(p, 'r', ids);
      return { items: ids.flatMap((id) => (docs.has(id) ? [reviewView(docs.get(id)!)] : [])) };
    },

    async dashboard(now: string, upcoming = 10): Promise<Dashboard> {
      const p = prefixOf(await generation());
      const overdueBefore = `(${dayNumber(now)}`;
      const [aCount, cCount] = await Promise.all([redis.hgetall(`${p}a:count`), redis.hgetall(`${p}c:count`)]);
      const sectors = Object.keys(aCount).flatMap((k) => {
        const m = /^sec:(.+):total$/.exec(k);
        return m && Number(aCount[k]) > 0 ? [m[1]!] : [];
      });
      const m = redis.multi();
      for (const s of CAN_FALL_OVERDUE) m.zcount(`${p}a:due:${s}`, '-inf', overdueBefore);
      for (const sector of sectors) for (const s of CAN_FALL_OVERDUE) m.zcount(`${p}a:due:${sector}:${s}`, '-inf', overdueBefore);
      m.zlexcount(`${p}c:open`, '-', `(${now.slice(0, 10)}`);
      m.zrange(`${p}r:status:scheduled`, `(${Date.parse(now)}`, '+inf', 'BYSCORE', 'LIMIT', 0, upcoming);
      m.zrange(`${p}a:ends`, '-inf', String(Date.parse(now)), 'BYSCORE');
      m.zrange(`${p}a:await:all`, '0', '-1');
      const res = await execOrThrow(m);
      let i = 0;
      const num = (v: string | undefined) => Number(v ?? 0);
      const statusCounts = (get: (s: AgreementStatus) => number, fallen: number[]) => {
        const out = Object.fromEntries(AGREEMENT_STATUSES.map((s) => [s, get(s)])) as Record<AgreementStatus, number>;
        CAN_FALL_OVERDUE.forEach((s, k) => {
          out[s] -= fallen[k]!;
          out.delayed += fallen[k]!;
        });
        return out;
      };
      const totalFallen = CAN_FALL_OVERDUE.map(() => res[i++] as number);
      const bySector: Dashboard['agreements']['bySector'] = {};
      for (const sector of sectors) {
        const fallen = CAN_FALL_OVERDUE.map(() => res[i++] as number);
        bySector[sector] = { total: num(aCount[`sec:${sector}:total`]), byStatus: statusCounts((s) => num(aCount[`sec:${sector}:st:${s}`]), fallen) };
      }
      const overdue = res[i++] as number;
      const upcomingIds = res[i++] as string[];
      const endedIds = (res[i++] as string[]).map((member) => member.split(SEP).at(-1)!);
      const ended = new Set(endedIds);
      const awaiting: Record<string, string[]> = {};
      for (const member of res[i++] as string[]) {
        const [party, , id] = member.split(SEP) as [string, string, string];
        if (!ended.has(id)) (awaiting[party] ??= []).push(id);
      }
      const reviews = await getDocs<ReviewDoc>(p, 'r', upcomingIds);
      const byStatus = statusCounts((s) => num(aCount[`st:${s}`]), totalFallen);
      for (const doc of (await getDocs<AgreementDoc>(p, 'a', endedIds)).values()) {
        // The counters hold it under the status it has without the denunciation.
        const held = deriveAgreementStatus({ ...doc.agreement, denunciation: null }, now);
        for (const counts of [byStatus, bySector[doc.agreement.sector]?.byStatus]) {
          if (!counts) continue;
          counts[held]--;
          counts.terminated++;
        }
      }
      return {
        agreements: { total: num(aCount.total), byStatus, bySector },
        commitments: {
          total: num(cCount.total),
          byStatus: Object.fromEntries(COMMITMENT_STATUSES.map((s) => [s, num(cCount[`st:${s}`])])) as Record<CommitmentStatus, number>,
          overdue,
        },
        upcomingReviews: upcomingIds.flatMap((id) => (reviews.has(id) ? [reviewView(reviews.get(id)!)] : [])),
        awaitingRatification: awaitingByParty(awaiting),
        milestones: {
          total: num(cCount['ms:total']), scheduled: num(cCount['ms:scheduled']), met: num(cCount['ms:met']),
          partially_met: num(cCount['ms:partially_met']), not_met: num(cCount['ms:not_met']),
        },
      };
    },

    async close() {
      listeners.clear();
      await Promise.allSettled([redis.quit(), writer.quit()]);
    },
  };
}

// The fence is checked in the very script that writes: nothing can take the key in between.
const SWITCH_FENCED = `
if redis.call('get', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('set', KEYS[1], ARGV[1])
return 1
`;
const UNLINK_FENCED = `
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
if #KEYS < 2 then return 0 end
return redis.call('unlink', unpack(KEYS, 2))
`;
const fenceLost = (fence: Fence, what: string) => new LeaseLostError(`${fence.key} is no longer held by ${fence.token}; ${what}`);

/** Points readers at another generation of keys, atomically; under a `fence`, only while its key holds the token. */
export async function switchGeneration(redis: Redis, namespace: string, generation: number, options: { fence?: Fence } = {}): Promise<void> {
  const { fence } = options;
  if (!fence) {
    await redis.set(`${namespace}:current`, String(generation));
    return;
  }
  if ((await redis.eval(SWITCH_FENCED, 2, `${namespace}:current`, fence.key, String(generation), fence.token)) !== 1) {
    throw fenceLost(fence, `readers were not switched to generation ${generation}`);
  }
}

/**
 * Deletes every key of a generation (after a switch, the old one), in batches. Under a `fence`,
 * each batch is deleted only while the fence key holds its token, checked in the same script: a
 * rebuild that lost its lock cannot drop a generation its successor is writing. A lost fence
 * raises LeaseLostError and leaves the rest of the generation where it is.
 */
export async function dropGeneration(redis: Redis, namespace: string, generation: number, options: { fence?: Fence } = {}): Promise<number> {
  const { fence } = options;
  let cursor = '0';
  let dropped = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:g${generation}:*`, 'COUNT', 1000);
    cursor = next;
    if (fence) {
      const n = (await redis.eval(UNLINK_FENCED, 1 + keys.length, fence.key, ...keys, fence.token)) as number;
      if (n < 0) throw fenceLost(fence, `${dropped} keys of generation ${generation} were dropped, the rest left`);
      dropped += n;
    } else if (keys.length) dropped += await redis.unlink(...keys);
  } while (cursor !== '0');
  return dropped;
}
