// Runs one command against one stream: read, fold, decide, append at the expected revision.
// Without If-Match a conflict means someone else wrote first, so the command is decided again
// on the newer state; with If-Match the caller asked for exactly that revision, so it is 412.
import { createHash, randomUUID } from 'node:crypto';
import { AppError, ConcurrencyError, type Decider } from '@cm/domain';
import type { EventMetadata, EventStore, NewEvent, Position, StoredEvent } from './event-store';

export type Timed = { type: string; data: unknown; occurredAt: string };


export type CommandContext = {
  actor: string;
  occurredAt: string;
  correlationId: string;
  /** When set, event ids derive from it so a repeated request appends nothing. */
  idempotencyScope: string | null;
  ifMatch: number | null;
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

// Commands on one stream run one at a time within a process, so they never collide with each
// other; only writers in other processes can still conflict, and those are retried.
const streamLocks = new WeakMap<EventStore, Map<string, Promise<unknown>>>();

async function withStreamLock<T>(store: EventStore, stream: string, fn: () => Promise<T>): Promise<T> {
  let locks = streamLocks.get(store);
  if (!locks) streamLocks.set(store, (locks = new Map()));
  const previous = locks.get(stream) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => undefined);
  locks.set(stream, tail);
  try {
    return await run;
  } finally {
    if (locks.get(stream) === tail) locks.delete(stream);
  }
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

/** An event id derived from a seed: the same request always names the same events. */
export function eventIdFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  // Shaped as a version-4-like UUID so every adapter accepts it as an event id.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function runCommand<S, C, E extends { type: string; data: unknown }>(
  store: EventStore,
  stream: string,
  decider: Decider<S, C, E>,
  command: C,
  ctx: CommandContext,
): Promise<CommandResult<S>> {
  return withStreamLock(store, stream, () => decideAndAppend(store, stream, decider, command, ctx));
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
      events = decider.decide(command, state);
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
    const metadata: EventMetadata = { actor: ctx.actor, occurredAt: ctx.occurredAt, correlationId: ctx.correlationId };
    const toAppend: NewEvent[] = events.map((e, i) => ({
      id: ctx.idempotencyScope ? eventIdFrom(`${ctx.idempotencyScope}|${stream}|${i}`) : randomUUID(),
      type: e.type,
      data: e.data,
      metadata,
    }));
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
