// Runs the ledger projection: subscribes to the log after the read store's checkpoint, loads
// the documents each batch touches, folds the batch, and commits documents and checkpoint in
// one write. An empty read store (the embedded default) is therefore rebuilt from the log.
import type { Logger } from 'pino';
import { comparePositions, type EventStore, type Position, type StoredEvent, type Subscription } from '@cm/event-store';
import { documentsNeeded, projectBatch } from './ledger-projection.js';
import type { HeldLease } from './projection-lease.js';
import { GenerationChangedError, LeaseLostError } from './redis-read-store.js';
import { CheckpointMismatchError, type ReadStore } from './read-store.js';

export type ProjectorStatus = {
  checkpoint: Position | null;
  head: Position | null;
  caughtUp: boolean;
  eventsApplied: number;
  lastError: string | null;
};

export function createProjector(deps: {
  eventStore: EventStore;
  readStore: ReadStore;
  logger: Logger;
  batchSize?: number;
  /** The lease this projector writes under, when several instances compete for it. */
  fence?: HeldLease;
}) {
  const log = deps.logger.child({ component: 'projector' });
  let subscription: Subscription | null = null;
  let eventsApplied = 0;
  let lastError: string | null = null;
  let checkpoint: Position | null = null;
  let stopped = false;
  /** A subscription to close (and maybe replace) once the failing handler has returned. */
  let pending: { immediate: NodeJS.Immediate; old: Subscription } | null = null;
  /** That close (and resubscription) while it runs. */
  let replacing: Promise<void> | null = null;

  async function applyBatch(events: StoredEvent[]): Promise<void> {
    // The batch continues from the last one committed (or the checkpoint subscribed after): the store checks it.
    const from = checkpoint;
    const first = documentsNeeded(events, new Map());
    const reviews = await deps.readStore.getReviews(first.reviewIds);
    const { agreementIds } = documentsNeeded(events, reviews);
    const agreements = await deps.readStore.getAgreements(agreementIds);
    const changes = projectBatch({ agreements, reviews }, events);
    const last = events.at(-1)!.position;
    try {
      await deps.readStore.commit(changes, last, deps.fence ? { from, fence: deps.fence } : { from });
    } catch (err) {
      // Said here because the subscription may already be closed and drop the error silently.
      if (err instanceof LeaseLostError) log.warn({ fence: deps.fence?.token, upTo: last }, 'batch refused: this projector no longer holds the lease');
      if (err instanceof CheckpointMismatchError) log.warn({ from, upTo: last, stored: err.stored }, 'batch refused: the read store is not at the checkpoint it starts from; re-reading the checkpoint');
      throw err;
    }
    checkpoint = last;
    eventsApplied += events.length;
    lastError = null;
  }

  async function start(): Promise<void> {
    if (stopped) return;
    checkpoint = await deps.readStore.checkpoint();
    // Stopped while the checkpoint was read: subscribing now would leave a subscription nobody closes.
    if (stopped) return;
    log.info({ checkpoint }, 'projector starting after checkpoint');
    const started = Date.now();
    let reportedCatchUp = false;
    subscription = deps.eventStore.subscribe({
      after: checkpoint,
      batchSize: deps.batchSize ?? 500,
      onEvents: async (events) => {
        await applyBatch(events);
        if (!reportedCatchUp && events.length < (deps.batchSize ?? 500)) {
          reportedCatchUp = true;
          log.info({ events: eventsApplied, ms: Date.now() - started, checkpoint }, 'projector caught up with the log');
        }
      },
      onError: (err) => {
        lastError = err instanceof Error ? err.message : String(err);
        if (err instanceof GenerationChangedError) {
          // A rebuild switched generations: continue from the new generation's own checkpoint.
          log.warn({ checkpoint }, 'read models switched to a rebuilt generation; resubscribing from its checkpoint');
          replaceSubscription({ resume: true });
          return;
        }
        if (err instanceof LeaseLostError) {
          // The lease moved on and never comes back to this token: retrying could only be refused
          // again. The lease runner, failing to renew, stops this projector and starts a new one.
          log.warn({ fence: deps.fence?.token }, 'projector fenced: it stops reading until the lease is taken afresh');
          replaceSubscription({ resume: false });
          return;
        }
        log.error({ err, checkpoint }, 'projection batch failed; it will be retried');
      },
    });
  }

  /** Closes the subscription (then subscribes again from the stored checkpoint, if `resume`). */
  function replaceSubscription({ resume }: { resume: boolean }): void {
    const old = subscription;
    subscription = null;
    if (!old || pending) return;
    // Closing from inside the failing handler would wait on itself: let the handler return first.
    const immediate = setImmediate(() => {
      pending = null;
      replacing = (async () => {
        await old.close();
        await (resume ? start() : undefined);
      })()
        .catch((err: unknown) => log.error({ err }, 'projector restart failed'))
        .finally(() => {
          replacing = null;
        });
    });
    pending = { immediate, old };
  }

  return {
    start,
    /** Final: once it resolves no subscription is open, none will be, and no timer of this projector is left. */
    async stop(): Promise<void> {
      stopped = true;
      const waiting = pending;
      pending = null;
      if (waiting) {
        clearImmediate(waiting.immediate);
        await waiting.old.close();
      }
      await replacing;
      const open = subscription;
      subscription = null;
      await open?.close();
    },
    async status(): Promise<ProjectorStatus> {
      const head = await deps.eventStore.headPosition();
      const cp = await deps.readStore.checkpoint();
      return { checkpoint: cp, head, caughtUp: comparePositions(cp, head) >= 0, eventsApplied, lastError };
    },
  };
}
export type Projector = ReturnType<typeof createProjector>;

/** Resolves true once the read store has applied `position`, false after `timeoutMs`. */
export async function waitForCheckpoint(store: ReadStore, position: Position, timeoutMs: number): Promise<boolean> {
  if (comparePositions(await store.checkpoint(), position) >= 0) return true;
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      off();
      clearTimeout(timer);
      clearInterval(poll);
      resolve(ok);
    };
    const off = store.onCommit((cp) => {
      if (comparePositions(cp, position) >= 0) finish(true);
    });
    // Another process may be the projector: poll as well as listen.
    const poll = setInterval(() => {
      void store.checkpoint().then((cp) => {
        if (comparePositions(cp, position) >= 0) finish(true);
      }, () => undefined);
    }, 25);
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}
