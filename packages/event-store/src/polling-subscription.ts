// The subscription loop shared by the stores that hold the log in a database (SQLite,
// PostgreSQL): read after the last position in batches, hand each batch on, then sleep until
// the poll interval passes or the store pokes (an append this process announced, a NOTIFY).
// A subscriber whose error handler throws still gets its events: the loop never dies silently.
import type { Position, StoredEvent, SubscribeOptions, Subscription } from './event-store.js';

export type PollingSubscriptionOptions = {
  readAll: (opts: { after: Position | null; limit: number }) => Promise<StoredEvent[]>;
  pollIntervalMs: number;
  /** Where an onError that throws is reported, and how the line starts ("SQLite subscription"). */
  logError: (message: string, err: unknown) => void;
  label: string;
  /** Registers the poke with whatever announces appends; the returned function unregisters it. */
  onPoke: (poke: () => void) => () => void;
};

export function pollingSubscription(opts: SubscribeOptions, store: PollingSubscriptionOptions): Subscription {
  let active = true;
  let wake: (() => void) | null = null;
  // Set when an append is announced: the log may have grown since the last read.
  let poked = false;
  const poke = () => {
    poked = true;
    wake?.();
  };
  const unregister = store.onPoke(poke);
  const batchSize = opts.batchSize ?? 500;
  let after: Position | null = opts.after;
  const done = (async () => {
    while (active) {
      poked = false;
      try {
        const batch = await store.readAll({ after, limit: batchSize });
        if (!active) break;
        if (batch.length > 0) {
          await opts.onEvents(batch);
          after = batch.at(-1)!.position;
        }
        // A short batch was the end of the log when read: read again at once only if an append
        // was announced since (others are found by the poll).
        if (batch.length === batchSize || poked) continue;
      } catch (err) {
        if (!active) break;
        try {
          opts.onError(err);
        } catch (thrown) {
          try {
            store.logError(`${store.label}: onError threw; reading on`, thrown);
          } catch {
            // Nothing left to report to.
          }
        }
      }
      if (!active) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, store.pollIntervalMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = null;
    }
  })();
  return {
    async close() {
      active = false;
      unregister();
      poke();
      await done;
    },
  };
}
