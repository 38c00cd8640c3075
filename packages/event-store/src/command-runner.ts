// Runs one command against one stream: read, fold, decide, append at the expected revision.
// Without If-Match a conflict means someone else wrote first, so the command is decided again
// on the newer state; with If-Match the caller asked for exactly that revision, so it is 412.
import { createHash, randomUUID } from 'node:crypto';
import { AppError, ConcurrencyError, type Decider } from '@cm/domain';
import type { AppendResult, EventMetadata, EventSource, EventStore, NewEvent, Position, StoredEvent } from './event-store.js';
import { WriterUnavailableError } from './sqlite-writer.js';

export type Timed = { type: string; data: unknown; occurredAt: string };


export type CommandContext = {
  actor: string;
  occurredAt: string;
  /** The server's clock when the command was received, handed to the decider (default: occurredAt). */
  now?: string | undefined;
  correlationId: string;
  /** When set, event ids derive from it so a repeated request appends nothing. */
  idempotencyScope: string | null;
  ifMatch: number | null;
  /** Recorded in every event's metadata: the file the command came from (a spreadsheet import). */
  source?: EventSource | undefined;
};

export type CommandResult<S> = {
  before: S;
  state: S;
  revision: number;
  position: Position;
  appended: StoredEvent[];
};

/** How long a command keeps retrying conflicts with other processes before answering 503. */
const CONFLICT_BUDGET_MS = 3000;

// Commands on one stream run one batch at a time within a process, so they never collide with
// each other; only writers in other processes can still conflict, and those are retried. While a
// batch waits for its fsync, the commands that arrive for the same stream queue; the next batch
// decides them one after the other against the folded state (each sees the events of the ones
// before it) and appends all their events in one append, so one fsync serves them all instead
// of one fsync each. Every command still gets its own answer: its own events, revision, position.
type Job = {
  decider: Decider<unknown, unknown, { type: string; data: unknown }>;
  command: unknown;
  ctx: CommandContext;
  resolve: (r: CommandResult<unknown>) => void;
  reject: (err: unknown) => void;
};
/** Bounds one append (and so one transaction) when many commands queue on one stream. */
const MAX_BATCH = 64;
const streamQueues = new WeakMap<EventStore, Map<string, Job[]>>();

function enqueue(store: EventStore, stream: string, job: Job): void {
  let queues = streamQueues.get(store);
  if (!queues) streamQueues.set(store, (queues = new Map()));
  const queue = queues.get(stream);
  if (queue) {
    queue.push(job);
    return;
  }
  const fresh = [job];
  queues.set(stream, fresh);
  void drain(store, stream, fresh, queues);
}

async function drain(store: EventStore, stream: string, queue: Job[], queues: Map<string, Job[]>): Promise<void> {
  while (queue.length > 0) {
    const batch = takeBatch(queue);
    try {
      if (batch.length === 1) {
        const job = batch[0]!;
        await decideAndAppend(store, stream, job.decider, job.command, job.ctx).then(job.resolve, job.reject);
      } else {
        await decideBatchAndAppend(store, stream, batch);
      }
    } catch (err) {
      // A fault outside the command's own outcome (a decider bug): answer every command of the
      // batch not yet answered, and keep the queue moving. Settled promises ignore this.
      for (const job of batch) job.reject(err);
    }
  }
  // Nothing was awaited since the queue was seen empty: no command can have slipped in.
  queues.delete(stream);
}

// The stores recognise a repeated request by its FIRST event id only, so a command carrying an
// Idempotency-Key may only lead a batch (its repeat is then seen and the batch falls back to
// one command at a time); commands behind it in the batch have no key.
function takeBatch(queue: Job[]): Job[] {
  const first = queue[0]!;
  let n = 1;
  while (n < queue.length && n < MAX_BATCH && queue[n]!.ctx.idempotencyScope === null && queue[n]!.decider.evolve === first.decider.evolve) n++;
  return queue.splice(0, n);
}

/** Thrown when a command without If-Match kept losing races for longer than the budget. */
export class StreamBusyError extends Error {
  constructor(readonly stream: string) {
    super(`stream ${stream} is busy with concurrent writers; retry shortly`);
  }
}

// The state folded from a stream, kept between commands so a command reads only the events
// appended since (by anyone, in any process) instead of refolding the whole stream.
type Folded = { revision: number; state: unknown; position: Position };
const STATE_CACHE_SIZE = 10_000;
const stateCaches = new WeakMap<EventStore, Map<string, Folded>>();

function stateCache(store: EventStore): Map<string, Folded> {
  let cache = stateCaches.get(store);
  if (!cache) stateCaches.set(store, (cache = new Map()));
  return cache;
}

function remember(cache: Map<string, Folded>, stream: string, folded: Folded): void {
  cache.delete(stream);
  cache.set(stream, folded);
  if (cache.size > STATE_CACHE_SIZE) cache.delete(cache.keys().next().value!);
}

async function currentState<S, E>(store: EventStore, stream: string, decider: { initial: () => S; evolve: (s: S, e: E & { occurredAt: string }) => S }): Promise<{ state: S; revision: number; position: Position }> {
  const cache = stateCache(store);
  const cached = cache.get(stream);
  let state = cached ? (cached.state as S) : decider.initial();
  let revision = cached?.revision ?? -1;
  let position = cached?.position ?? '0';
  for (const e of await store.readStream(stream, { fromRevision: revision + 1 })) {
    state = decider.evolve(state, toTimed<E>(e));
    revision = e.revision;
    position = e.position;
  }
  remember(cache, stream, { revision, state, position });
  return { state, revision, position };
}

export function toTimed<E>(e: StoredEvent): E & { occurredAt: string } {
  return { type: e.type, data: e.data, occurredAt: e.metadata.occurredAt } as unknown as E & { occurredAt: string };
}

/** What every audit view shows of an event first: where it sits, what it is, when and by whom. */
export function eventEnvelope(e: StoredEvent) {
  return {
    revision: e.revision,
    position: e.position,
    type: e.type,
    occurredAt: e.metadata.occurredAt,
    recordedAt: e.metadata.recordedAt,
    actor: e.metadata.actor,
  };
}

/** An event id derived from a seed: the same request always names the same events. */
export function eventIdFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  // Shaped as a version-4-like UUID so every adapter accepts it as an event id.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** What the decider is told of time: the clock reading the context carries and the command's occurredAt. */
function commandTime(ctx: CommandContext): { now: string; occurredAt: string } {
  return { now: ctx.now ?? ctx.occurredAt, occurredAt: ctx.occurredAt };
}

export function runCommand<S, C, E extends { type: string; data: unknown }>(
  store: EventStore,
  stream: string,
  decider: Decider<S, C, E>,
  command: C,
  ctx: CommandContext,
): Promise<CommandResult<S>> {
  return new Promise<CommandResult<S>>((resolve, reject) => {
    enqueue(store, stream, {
      decider: decider as unknown as Job['decider'],
      command,
      ctx,
      resolve: resolve as Job['resolve'],
      reject,
    });
  });
}

async function decideAndAppend<S, C, E extends { type: string; data: unknown }>(
  store: EventStore,
  stream: string,
  decider: Decider<S, C, E>,
  command: C,
  ctx: CommandContext,
): Promise<CommandResult<S>> {
  const deadline = Date.now() + CONFLICT_BUDGET_MS;
  for (let attempt = 1; ; attempt++) {
    const { state, revision, position: lastPosition } = await currentState(store, stream, decider);
    if (ctx.ifMatch !== null && ctx.ifMatch !== revision) throw new ConcurrencyError(stream, ctx.ifMatch, revision);
    let events: E[];
    try {
      events = decider.decide(command, state, commandTime(ctx));
    } catch (err) {
      // A retried request whose events were written before its answer was remembered now meets
      // its own effect ("already exists"...): answer what it did the first time.
      if (err instanceof AppError && ctx.idempotencyScope) {
        const replay = await replayFromLog(store, stream, decider, ctx.idempotencyScope);
        if (replay) return replay;
      }
      throw err;
    }
    if (events.length === 0) {
      return { before: state, state, revision, position: lastPosition, appended: [] };
    }
    const toAppend = eventsToAppend(stream, events, ctx);
    try {
      const result = await store.append(stream, toAppend, { expectedRevision: revision < 0 ? 'no_stream' : revision });
      if (result.duplicate) {
        const replay = await replayFromLog(store, stream, decider, ctx.idempotencyScope!);
        if (replay) return replay;
      }
      let next = state;
      for (const e of events) next = decider.evolve(next, { ...e, occurredAt: ctx.occurredAt });
      remember(stateCache(store), stream, { revision: result.revision, state: next, position: result.position });
      return { before: state, state: next, revision: result.revision, position: result.position, appended: result.events };
    } catch (err) {
      if (err instanceof ConcurrencyError && ctx.ifMatch === null) {
        if (Date.now() > deadline) throw new StreamBusyError(stream);
        // Full jitter, growing exponentially: writers in other processes spread out.
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 2 ** attempt)));
        continue;
      }
      throw err;
    }
  }
}

function eventsToAppend(stream: string, events: { type: string; data: unknown }[], ctx: CommandContext): NewEvent[] {
  const metadata: EventMetadata = { actor: ctx.actor, occurredAt: ctx.occurredAt, correlationId: ctx.correlationId, ...(ctx.source ? { source: ctx.source } : {}) };
  return events.map((e, i) => ({
    id: ctx.idempotencyScope ? eventIdFrom(`${ctx.idempotencyScope}|${stream}|${i}`) : randomUUID(),
    type: e.type,
    data: e.data,
    metadata,
  }));
}

type Planned = { job: Job; before: unknown; after: unknown; events: NewEvent[]; offset: number };

/**
 * Several commands queued on one stream: decided in order, each against the state the ones before
 * it leave, and appended together at the stream's revision. Nothing is answered before the append
 * is durable; when it conflicts with another process the whole batch is decided again. Anything
 * unusual (a repeated request, a store error) falls back to running the commands one by one.
 */
async function decideBatchAndAppend(store: EventStore, stream: string, jobs: Job[]): Promise<void> {
  const deadline = Date.now() + CONFLICT_BUDGET_MS;
  const evolve = jobs[0]!.decider.evolve;
  let open = jobs;
  for (let attempt = 1; ; attempt++) {
    let current: Folded;
    try {
      current = await currentState(store, stream, jobs[0]!.decider);
    } catch (err) {
      for (const job of open) job.reject(err);
      return;
    }
    let state = current.state;
    let revision = current.revision;
    let offset = 0;
    const planned: Planned[] = [];
    const refused: { job: Job; err: unknown }[] = [];
    const unchanged: { job: Job; state: unknown; revision: number; offset: number }[] = [];
    const alone: Job[] = [];
    for (const job of open) {
      if (job.ctx.ifMatch !== null && job.ctx.ifMatch !== revision) {
        refused.push({ job, err: new ConcurrencyError(stream, job.ctx.ifMatch, revision) });
        continue;
      }
      let events: { type: string; data: unknown }[];
      try {
        events = job.decider.decide(job.command, state, commandTime(job.ctx));
      } catch (err) {
        // A repeated request meeting its own effect is answered from the log, on its own.
        if (err instanceof AppError && job.ctx.idempotencyScope) alone.push(job);
        else refused.push({ job, err });
        continue;
      }
      if (events.length === 0) {
        unchanged.push({ job, state, revision, offset });
        continue;
      }
      const before = state;
      for (const e of events) state = evolve(state, { ...e, occurredAt: job.ctx.occurredAt });
      planned.push({ job, before, after: state, events: eventsToAppend(stream, events, job.ctx), offset });
      offset += events.length;
      revision += events.length;
    }

    let appended: StoredEvent[] = [];
    if (planned.length > 0) {
      let result: AppendResult;
      try {
        result = await store.append(stream, planned.flatMap((p) => p.events), {
          expectedRevision: current.revision < 0 ? 'no_stream' : current.revision,
        });
      } catch (err) {
        if (err instanceof ConcurrencyError) {
          // Another process wrote first. A command that named its revision (If-Match) has lost;
          // the others are decided again on the newer state.
          const retry: Job[] = [];
          for (const job of open) {
            if (job.ctx.ifMatch !== null && planned.some((p) => p.job === job)) job.reject(err);
            else retry.push(job);
          }
          if (retry.length === 0) return;
          if (Date.now() > deadline) {
            for (const job of retry) job.reject(new StreamBusyError(stream));
            return;
          }
          open = retry;
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(200, 2 ** attempt)));
          continue;
        }
        // The writer thread stopped: the batch may have been committed, so deciding the commands
        // again (with new event ids) could apply them twice. Every caller gets the retryable error.
        if (err instanceof WriterUnavailableError) {
          for (const job of open) job.reject(err);
          return;
        }
        // Nothing was written (an append is atomic): find out which command it was, one by one.
        await oneByOne(store, stream, open);
        return;
      }
      if (result.duplicate || result.events.length !== offset) {
        await oneByOne(store, stream, open);
        return;
      }
      appended = result.events;
      remember(stateCache(store), stream, { revision: result.revision, state, position: result.position });
    }

    const positionAt = (o: number) => (o === 0 ? current.position : appended[o - 1]!.position);
    for (const p of planned) {
      const mine = appended.slice(p.offset, p.offset + p.events.length);
      const last = mine.at(-1)!;
      p.job.resolve({ before: p.before, state: p.after, revision: last.revision, position: last.position, appended: mine });
    }
    for (const u of unchanged) u.job.resolve({ before: u.state, state: u.state, revision: u.revision, position: positionAt(u.offset), appended: [] });
    for (const r of refused) r.job.reject(r.err);
    await oneByOne(store, stream, alone);
    return;
  }
}

async function oneByOne(store: EventStore, stream: string, jobs: Job[]): Promise<void> {
  for (const job of jobs) await decideAndAppend(store, stream, job.decider, job.command, job.ctx).then(job.resolve, job.reject);
}

/** Finds the events a request with this idempotency scope appended, and the state right after them. */
async function replayFromLog<S, C, E extends { type: string; data: unknown }>(
  store: EventStore,
  stream: string,
  decider: Decider<S, C, E>,
  scope: string,
): Promise<CommandResult<S> | null> {
  const idAt = (i: number) => eventIdFrom(`${scope}|${stream}|${i}`);
  const all = await store.readStream(stream);
  const first = all.findIndex((e) => e.id === idAt(0));
  if (first < 0) return null;
  let last = first;
  while (last + 1 < all.length && all[last + 1]!.id === idAt(last + 1 - first)) last++;
  let state = decider.initial();
  let before = state;
  for (const [i, e] of all.slice(0, last + 1).entries()) {
    if (i === first) before = state;
    state = decider.evolve(state, toTimed<E>(e));
  }
  return { before, state, revision: all[last]!.revision, position: all[last]!.position, appended: all.slice(first, last + 1) };
}
