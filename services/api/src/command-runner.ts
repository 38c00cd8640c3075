// Runs one command against one stream: read, fold, decide, append at the expected revision.
// Without If-Match a conflict means someone else wrote first, so the command is decided again
// on the newer state; with If-Match the caller asked for exactly that revision, so it is 412.
import { createHash, randomUUID } from 'node:crypto';
import { ConcurrencyError } from '@cm/domain';
import type { EventMetadata, EventStore, NewEvent, Position, StoredEvent } from '@cm/event-store';

export type Timed = { type: string; data: unknown; occurredAt: string };

export type StreamDecider<S, C, E extends { type: string; data: unknown }> = {
  initial: () => S;
  evolve: (s: S, e: E & { occurredAt: string }) => S;
  decide: (c: C, s: S) => E[];
};

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

const MAX_ATTEMPTS = 8;

export function toTimed<E>(e: StoredEvent): E & { occurredAt: string } {
  return { type: e.type, data: e.data, occurredAt: e.metadata.occurredAt } as unknown as E & { occurredAt: string };
}

function deterministicId(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  // Shaped as a version-4-like UUID so every adapter accepts it as an event id.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export async function runCommand<S, C, E extends { type: string; data: unknown }>(
  store: EventStore,
  stream: string,
  decider: StreamDecider<S, C, E>,
  command: C,
  ctx: CommandContext,
): Promise<CommandResult<S>> {
  for (let attempt = 1; ; attempt++) {
    const history = await store.readStream(stream);
    const revision = history.length - 1;
    let state = decider.initial();
    for (const e of history) state = decider.evolve(state, toTimed<E>(e));
    if (ctx.ifMatch !== null && ctx.ifMatch !== revision) throw new ConcurrencyError(stream, ctx.ifMatch, revision);
    const events = decider.decide(command, state);
    if (events.length === 0) {
      return { before: state, state, revision, position: history.at(-1)?.position ?? '0', appended: [] };
    }
    const metadata: EventMetadata = { actor: ctx.actor, occurredAt: ctx.occurredAt, correlationId: ctx.correlationId };
    const toAppend: NewEvent[] = events.map((e, i) => ({
      id: ctx.idempotencyScope ? deterministicId(`${ctx.idempotencyScope}|${stream}|${i}`) : randomUUID(),
      type: e.type,
      data: e.data,
      metadata,
    }));
    try {
      const result = await store.append(stream, toAppend, { expectedRevision: revision < 0 ? 'no_stream' : revision });
      if (result.duplicate) {
        // A retry of a request whose events were written before its answer was: answer from the log.
        const upTo = await store.readStream(stream, { toRevision: result.revision });
        let replayed = decider.initial();
        let before = replayed;
        for (const e of upTo) {
          if (e.revision === result.events[0]!.revision) before = replayed;
          replayed = decider.evolve(replayed, toTimed<E>(e));
        }
        return { before, state: replayed, revision: result.revision, position: result.position, appended: result.events };
      }
      let next = state;
      for (const e of events) next = decider.evolve(next, { ...e, occurredAt: ctx.occurredAt });
      return { before: state, state: next, revision: result.revision, position: result.position, appended: result.events };
    } catch (err) {
      if (err instanceof ConcurrencyError && ctx.ifMatch === null && attempt < MAX_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
        continue;
      }
      throw err;
    }
  }
}
