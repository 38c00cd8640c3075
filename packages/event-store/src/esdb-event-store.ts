// The distributed log: an EventStoreDB (KurrentDB) node or cluster over gRPC, behaving as the
// SQLite adapter does under the contract. Shapes, positions and revisions are decided in
// esdb-mapping.ts; this file only sequences client calls.
//
// Two things EventStoreDB does not give, and how they are made up for:
// - No lookup by event id. A repeated append is recognised by scanning its stream (newest
//   first) for the first event id; command ids are per stream, so the stream is enough.
// - No server-side filter on $all reads in this client version (readAll sends no_filter), so
//   readAll, headPosition and listStreams page through $all and keep this service's streams.
//   Subscriptions do filter on the server.
import {
  BACKWARDS, END, EventStoreDBClient, FORWARDS, START, StreamNotFoundError, WrongExpectedVersionError, streamNameFilter,
} from '@eventstore/db-client';
import type { AllStreamResolvedEvent, Direction, Position as EsdbPosition, ReadPosition, ReadRevision } from '@eventstore/db-client';
import { ConcurrencyError } from '@cm/domain';
import type {
  AppendResult, EventStore, NewEvent, Position, ReadStreamOptions, StoredEvent, SubscribeOptions, Subscription,
} from './event-store';
import {
  DEFAULT_STREAM_PREFIXES, compareEsdbPositions, decodePosition, fromEsdbRevision, fromResolvedEvent, headOf, isOwnEvent,
  positionOf, prepareAppend, sameEventId, toEsdbEvent, toEsdbExpectedRevision, toEsdbRevision, wantedRevision,
  type PreparedEvent,
} from './esdb-mapping';

export type EsdbEventStoreOptions = {
  /** `esdb://host:2113?tls=false`, or `esdb+discover://...` for a cluster; $all needs a user allowed to read it. */
  connectionString: string;
  now?: () => Date;
  /** The streams this service owns: readAll, subscribe, headPosition and listStreams see only these. */
  streamPrefixes?: readonly string[];
};

export type EsdbEventStore = EventStore & { readonly client: EventStoreDBClient };

// Most streams fit in one page, so the id scan is usually the same single read as the head read.
const STREAM_SCAN_PAGE = 256;
const ALL_PAGE = 512;
// `any` promises the caller no conflict; the chain still needs an exact revision, so it retries.
const ANY_ATTEMPTS = 20;
const RESUBSCRIBE_MIN_MS = 100;
const RESUBSCRIBE_MAX_MS = 5000;

export function createEsdbEventStore(options: EsdbEventStoreOptions): EsdbEventStore {
  const prefixes = [...(options.streamPrefixes ?? DEFAULT_STREAM_PREFIXES)];
  if (prefixes.length === 0 || prefixes.some((p) => p.length === 0 || p.startsWith('$'))) {
    throw new Error('streamPrefixes must name at least one non-empty, non-system stream prefix');
  }
  const client = EventStoreDBClient.connectionString(options.connectionString);
  const now = options.now ?? (() => new Date());

  async function readStreamEvents(stream: string, fromRevision: ReadRevision, maxCount: number, direction: Direction): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    try {
      for await (const resolved of client.readStream(stream, { fromRevision, maxCount, direction })) out.push(fromResolvedEvent(resolved));
    } catch (err) {
      if (err instanceof StreamNotFoundError) return [];
      throw err;
    }
    return out;
  }

  // Pages are read to their end (maxCount bounds them) so no gRPC call is left half-consumed.
  async function readAllPage(fromPosition: ReadPosition, direction: Direction, maxCount: number): Promise<AllStreamResolvedEvent[]> {
    const out: AllStreamResolvedEvent[] = [];
    for await (const resolved of client.readAll({ fromPosition, direction, maxCount })) out.push(resolved);
    return out;
  }

  function positionIn$all(resolved: AllStreamResolvedEvent): EsdbPosition {
    const p = positionOf(resolved);
    if (!p) throw new Error(`EventStoreDB answered a $all event without a position (${resolved.event?.streamId ?? 'no event'})`);
    return p;
  }

  /** This service's last event in $all (others' events and system events skipped), or null. */
  async function lastOwnEvent(): Promise<StoredEvent | null> {
    let seen: EsdbPosition | null = null;
    for (;;) {
      const page = await readAllPage(seen ?? END, BACKWARDS, ALL_PAGE);
      for (const resolved of page) {
        const p = positionIn$all(resolved);
        if (seen && compareEsdbPositions(p, seen) >= 0) continue;
        seen = p;
        if (isOwnEvent(resolved, prefixes)) return fromResolvedEvent(resolved);
      }
      if (page.length < ALL_PAGE) return null;
    }
  }

  /** Walks this service's events in $all after a position; `visit` returns false to stop. */
  async function scanForward(after: Position | null, pageSize: number, visit: (e: StoredEvent) => boolean): Promise<void> {
    let seen: EsdbPosition | null = after === null ? null : decodePosition(after);
    for (;;) {
      const page = await readAllPage(seen ?? START, FORWARDS, pageSize);
      for (const resolved of page) {
        const p = positionIn$all(resolved);
        // A forward read includes the event at its start position: that one was already seen.
        if (seen && compareEsdbPositions(p, seen) <= 0) continue;
        seen = p;
        if (isOwnEvent(resolved, prefixes) && !visit(fromResolvedEvent(resolved))) return;
      }
      if (page.length < pageSize) return;
    }
  }

  /** The stream's last event, and the stored event carrying `id` if the stream holds it. */
  async function scanStream(stream: string, id: string | undefined): Promise<{ last?: StoredEvent; found?: StoredEvent }> {
    let from: ReadRevision = END;
    let last: StoredEvent | undefined;
    for (;;) {
      const page = await readStreamEvents(stream, from, id === undefined ? 1 : STREAM_SCAN_PAGE, BACKWARDS);
      last ??= page[0];
      if (id === undefined) return { last };
      const found = page.find((e) => sameEventId(e.id, id));
      if (found) return { last, found };
      const oldest = page.at(-1);
      if (page.length < STREAM_SCAN_PAGE || !oldest || oldest.revision === 0) return { last };
      from = toEsdbRevision(oldest.revision - 1);
    }
  }

  async function repeatedAppend(stream: string, events: NewEvent[], first: StoredEvent): Promise<AppendResult> {
    // The same ids again: answer what the first append wrote, write nothing.
    const found = await readStreamEvents(stream, toEsdbRevision(first.revision), events.length, FORWARDS);
    if (found.length !== events.length || found.some((e, i) => !sameEventId(e.id, events[i]!.id))) {
      throw new Error(`append to ${stream} repeats event ${first.id} but not all the events appended with it: refusing a partial duplicate`);
    }
    const last = found.at(-1)!;
    return { revision: last.revision, position: last.position, events: found, duplicate: true };
  }

  async function readBack(stream: string, prepared: PreparedEvent[]): Promise<AppendResult> {
    // Positions exist only once written, and every event of a batch has its own.
    const first = prepared[0]!;
    const stored = await readStreamEvents(stream, toEsdbRevision(first.revision), prepared.length, FORWARDS);
    if (stored.length !== prepared.length || stored.some((e, i) => !sameEventId(e.id, prepared[i]!.id))) {
      throw new Error(`EventStoreDB accepted the append to ${stream} at revision ${first.revision} but holds other events there`);
    }
    // A twin append with the same ids that won the race makes EventStoreDB answer success
    // without writing (idempotent write); the stored events then carry the twin's stamp and hashes.
    const duplicate = stored.some((e, i) => e.hash !== prepared[i]!.hash);
    const last = stored.at(-1)!;
    return { revision: last.revision, position: last.position, events: stored, duplicate };
  }

  let closed = false;
  const openSubscriptions = new Set<Subscription>();

  const store: EsdbEventStore = {
    client,

    async append(stream, events, { expectedRevision }) {
      for (let attempt = 1; ; attempt++) {
        const { last, found } = await scanStream(stream, events[0]?.id);
        if (found) return repeatedAppend(stream, events, found);
        const current = last?.revision ?? -1;
        const want = wantedRevision(expectedRevision, current);
        if (want !== current) throw new ConcurrencyError(stream, want, current);
        if (events.length === 0) return { revision: current, position: last?.position ?? '0', events: [], duplicate: false };

        const prepared = prepareAppend(stream, events, headOf(last), now());
        try {
          // Always the exact revision read, even for `any`: prevHash was computed from that head.
          await client.appendToStream(stream, prepared.map(toEsdbEvent), { expectedRevision: toEsdbExpectedRevision(current) });
        } catch (err) {
          if (!(err instanceof WrongExpectedVersionError)) throw err;
          if (expectedRevision === 'any' && attempt < ANY_ATTEMPTS) {
            await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 ** attempt)));
            continue;
          }
          throw new ConcurrencyError(stream, want, fromEsdbRevision(err.actualVersion));
        }
        return readBack(stream, prepared);
      }
    },

    async readStream(stream, opts: ReadStreamOptions = {}) {
      const from = Math.max(0, opts.fromRevision ?? 0);
      let maxCount = opts.limit === undefined || opts.limit < 0 ? Number.MAX_SAFE_INTEGER : opts.limit;
      if (opts.toRevision !== undefined) maxCount = Math.min(maxCount, opts.toRevision - from + 1);
      if (maxCount <= 0) return [];
      const events = await readStreamEvents(stream, toEsdbRevision(from), maxCount, FORWARDS);
      const upTo = opts.recordedUpTo;
      // recordedAt never decreases within a stream, so this keeps a prefix, as the SQLite index does.
      return upTo === undefined ? events : events.filter((e) => e.metadata.recordedAt <= upTo);
    },

    async streamRevision(stream) {
      const [last] = await readStreamEvents(stream, END, 1, BACKWARDS);
      return last?.revision ?? -1;
    },

    async readAll({ after, limit }) {
      const out: StoredEvent[] = [];
      if (limit <= 0) return out;
      await scanForward(after, Math.min(ALL_PAGE, Math.max(32, limit + 1)), (e) => out.push(e) < limit);
      return out;
    },

    async headPosition() {
      return (await lastOwnEvent())?.position ?? null;
    },

    async lastRecordedAt() {
      return (await lastOwnEvent())?.metadata.recordedAt ?? null;
    },

    async listStreams() {
      const streams = new Set<string>();
      await scanForward(null, ALL_PAGE, (e) => {
        streams.add(e.stream);
        return true;
      });
      return [...streams];
    },

    subscribe(opts: SubscribeOptions): Subscription {
      const batchSize = Math.max(1, opts.batchSize ?? 500);
      let active = true;
      let after: Position | null = opts.after;
      let wake: (() => void) | null = null;
      const poke = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      const sleep = (ms: number) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });

      // One catch-up subscription per attempt; a failure (server, network or handler) ends the
      // attempt and the next one starts from the last position the handler finished.
      async function attempt(): Promise<{ failed: false } | { failed: true; err: unknown }> {
        const queue: StoredEvent[] = [];
        const state: { failure: { err: unknown } | null; over: boolean } = { failure: null, over: false };
        const fail = (err: unknown) => {
          state.failure ??= { err };
          poke();
        };
        const from = after === null ? null : decodePosition(after);
        const sub = client.subscribeToAll({ fromPosition: from ?? START, filter: streamNameFilter({ prefixes: [...prefixes] }) });
        sub.on('data', (resolved: AllStreamResolvedEvent) => {
          if (state.over) return;
          try {
            const p = positionOf(resolved);
            // Subscription starts are exclusive; the check guards against a server that differs.
            if (from && p && compareEsdbPositions(p, from) <= 0) return;
            if (!isOwnEvent(resolved, prefixes)) return;
            queue.push(fromResolvedEvent(resolved));
          } catch (err) {
            fail(err);
            return;
          }
          // Hold the server back while the handler is busy: gRPC flow control does the rest.
          if (queue.length >= batchSize) sub.pause();
          poke();
        });
        sub.on('error', (err: Error) => {
          if (!state.over) fail(err);
        });
        sub.on('end', () => {
          if (!state.over) fail(new Error('EventStoreDB ended the $all subscription'));
        });
        try {
          while (active && !state.failure) {
            if (queue.length === 0) {
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              continue;
            }
            const batch = queue.splice(0, batchSize);
            if (sub.isPaused() && queue.length < batchSize) sub.resume();
            try {
              await opts.onEvents(batch);
            } catch (err) {
              fail(err);
              break;
            }
            after = batch.at(-1)!.position;
          }
        } finally {
          state.over = true;
          try {
            await sub.unsubscribe();
          } catch (err) {
            // Reported as this attempt's failure unless an earlier one (likely its cause) is.
            state.failure ??= { err };
          }
        }
        return state.failure ? { failed: true, err: state.failure.err } : { failed: false };
      }

      const done = (async () => {
        let delay = RESUBSCRIBE_MIN_MS;
        while (active) {
          const deliveredBefore = after;
          const result = await attempt();
          if (!active) break;
          if (!result.failed) continue;
          opts.onError(result.err);
          // Back off while nothing gets through; a delivered batch proves the path works again.
          if (after !== deliveredBefore) delay = RESUBSCRIBE_MIN_MS;
          await sleep(delay);
          delay = Math.min(RESUBSCRIBE_MAX_MS, delay * 2);
        }
      })();

      const subscription: Subscription = {
        async close() {
          active = false;
          openSubscriptions.delete(subscription);
          poke();
          await done;
        },
      };
      openSubscriptions.add(subscription);
      return subscription;
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...openSubscriptions].map((s) => s.close()));
      await client.dispose();
    },
  };
  return store;
}
