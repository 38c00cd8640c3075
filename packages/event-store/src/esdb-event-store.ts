// The distributed log: an EventStoreDB (KurrentDB) node or cluster over gRPC, behaving as the
// SQLite adapter does under the contract. Shapes, positions and revisions are decided in
// esdb-mapping.ts; this file only sequences client calls.
//
// Two things EventStoreDB does not give, and how they are made up for:
// - No lookup by event id. Each append claims its first event id in a stream of its own,
//   `ledger-event-id-<id>` (expected no_stream, so one claimant wins across the whole log),
//   and records there where the events went once they are written. A repeated append is
//   answered from that record: one short read, whatever the stream's length.
// - No server-side filter on $all reads in this client version (readAll sends no_filter), so
//   readAll and headPosition page through $all and keep this service's streams; listStreams
//   does so once and then only reads what was added since. Subscriptions do filter on the
//   server, and take its checkpoints so a reconnect does not rescan what the filter skipped.
import {
  BACKWARDS, END, EventStoreDBClient, FORWARDS, NO_STREAM, START, StreamDeletedError, StreamNotFoundError, WrongExpectedVersionError,
  jsonEvent, streamNameFilter,
} from '@eventstore/db-client';
import type {
  AllStreamResolvedEvent, AppendExpectedRevision, Direction, EventData, Position as EsdbPosition, ReadPosition, ReadRevision,
} from '@eventstore/db-client';
import { randomUUID } from 'node:crypto';
import { ConcurrencyError } from '@cm/domain';
import type {
  AppendResult, EventStore, NewEvent, Position, ReadStreamOptions, StoredEvent, SubscribeOptions, Subscription,
} from './event-store.js';
import {
  DEFAULT_ANY_RETRY_MS, DEFAULT_STREAM_PREFIXES, ID_CLAIMED, ID_WRITTEN, SubscriptionCursor, anyContentionError, anyRetryDelay,
  checkAppendResult, mapAppendError, superviseSubscription, claimedData, compareEsdbPositions, decodePosition, deletedStreamError, emptyStreamHistoryError,
  fromResolvedEvent, headOf, idClaimStream, idInOtherStreamError, isOwnEvent, positionOf, prepareAppend, readIdClaim, sameEventId, sameIds,
  toEsdbEvent, toEsdbExpectedRevision, toEsdbRevision, wantedRevision, writtenData, type AttemptOutcome, type ClaimRecord, type IdClaim, type PreparedEvent,
} from './esdb-mapping.js';

export type EsdbEventStoreOptions = {
  /** `esdb://host:2113?tls=false`, or `esdb+discover://...` for a cluster; $all needs a user allowed to read it. */
  connectionString: string;
  now?: () => Date;
  /** The streams this service owns: readAll, subscribe, headPosition and listStreams see only these. */
  streamPrefixes?: readonly string[];
  /** How long an append with expected revision `any` keeps retrying a moving stream head (default 10 s). */
  anyRetryMs?: number;
  /** How long an append waits for another writer's claim on the same event id to be written (default 2 s). */
  claimWaitMs?: number;
  /** Monotonic milliseconds for the retry and wait budgets (default performance.now). */
  elapsedClock?: () => number;
  /** Where a subscriber's onError that throws is reported; the subscription carries on (default console.error). */
  logError?: (message: string, err: unknown) => void;
};

export type EsdbEventStore = EventStore & { readonly client: EventStoreDBClient };

const ALL_PAGE = 512;
const STREAM_PAGE = 256;
const CHECKPOINT_INTERVAL = 32;

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function createEsdbEventStore(options: EsdbEventStoreOptions): EsdbEventStore {
  const prefixes = [...(options.streamPrefixes ?? DEFAULT_STREAM_PREFIXES)];
  if (prefixes.length === 0 || prefixes.some((p) => p.length === 0 || p.startsWith('$'))) {
    throw new Error('streamPrefixes must name at least one non-empty, non-system stream prefix');
  }
  const client = EventStoreDBClient.connectionString(options.connectionString);
  const now = options.now ?? (() => new Date());
  const anyRetryMs = options.anyRetryMs ?? DEFAULT_ANY_RETRY_MS;
  const claimWaitMs = options.claimWaitMs ?? 2000;
  const elapsed = options.elapsedClock ?? (() => performance.now());
  const logError = options.logError ?? ((message: string, err: unknown) => console.error(message, err));

  async function readStreamEvents(stream: string, fromRevision: ReadRevision, maxCount: number, direction: Direction): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    try {
      for await (const resolved of client.readStream(stream, { fromRevision, maxCount, direction })) out.push(fromResolvedEvent(resolved));
    } catch (err) {
      if (err instanceof StreamNotFoundError) return [];
      if (err instanceof StreamDeletedError) throw deletedStreamError(stream);
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

  /**
   * Walks this service's events in $all after a position; `visit` returns false to stop.
   * Answers the last $all position looked at (any stream's), so a later walk can go on from it.
   */
  async function scanForward(after: EsdbPosition | null, pageSize: number, visit: (e: StoredEvent) => boolean): Promise<EsdbPosition | null> {
    let seen = after;
    for (;;) {
      const page = await readAllPage(seen ?? START, FORWARDS, pageSize);
      for (const resolved of page) {
        const p = positionIn$all(resolved);
        // A forward read includes the event at its start position: that one was already seen.
        if (seen && compareEsdbPositions(p, seen) <= 0) continue;
        seen = p;
        if (isOwnEvent(resolved, prefixes) && !visit(fromResolvedEvent(resolved))) return seen;
      }
      if (page.length < pageSize) return seen;
    }
  }

  // --- event id claims ---------------------------------------------------------------------

  async function readClaim(id: string): Promise<IdClaim> {
    const records: ClaimRecord[] = [];
    try {
      for await (const r of client.readStream(idClaimStream(id), { fromRevision: START, maxCount: 8, direction: FORWARDS })) {
        if (r.event) records.push({ type: r.event.type, data: r.event.data });
      }
    } catch (err) {
      if (err instanceof StreamNotFoundError) return { state: 'none' };
      throw err;
    }
    return readIdClaim(records);
  }

  /** Appends unless the stream moved; false on a conflict, thrown or (throwOnAppendFailure=false) resolved. */
  async function appendIfAt(stream: string, events: EventData[], expectedRevision: AppendExpectedRevision): Promise<boolean> {
    try {
      const result = await client.appendToStream(stream, events, { expectedRevision });
      return result.success;
    } catch (err) {
      if (err instanceof WrongExpectedVersionError) return false;
      throw err;
    }
  }

  const claimEvent = (type: string, data: Record<string, unknown>): EventData => jsonEvent({ id: randomUUID(), type, data });

  /** Records where the claimed events went; exactly one of several writers of them wins. */
  async function markWritten(id: string, stream: string, revision: number): Promise<boolean> {
    return appendIfAt(idClaimStream(id), [claimEvent(ID_WRITTEN, writtenData(stream, revision))], 0n);
  }

  /** The events a written claim points at, answered as a repeated append. */
  async function answerRepeated(stream: string, revision: number, events: NewEvent[]): Promise<AppendResult> {
    const found = await readStreamEvents(stream, toEsdbRevision(revision), events.length, FORWARDS);
    if (!sameIds(found.map((e) => e.id), events)) {
      throw new Error(`append repeats event ${events[0]!.id} of ${stream}@${revision} but not all the events appended with it: refusing a partial duplicate`);
    }
    const last = found.at(-1)!;
    return { revision: last.revision, position: last.position, events: found, duplicate: true };
  }

  /**
   * A claim not (yet) marked written: its claimant is writing, or stopped between the claim and
   * the mark. Looks for the events among those appended since the claim (not the whole stream).
   */
  async function claimedEventsAt(claim: Extract<IdClaim, { state: 'claimed' }>): Promise<number | null> {
    let from = Math.max(0, claim.fromRevision);
    for (;;) {
      const page = await readStreamEvents(claim.stream, toEsdbRevision(from), STREAM_PAGE, FORWARDS);
      const hit = page.find((e) => sameEventId(e.id, claim.ids[0]!));
      if (hit) return hit.revision;
      if (page.length < STREAM_PAGE) return null;
      from = page.at(-1)!.revision + 1;
    }
  }

  /** What a claim already taken means for this append: an answer, or null to go on writing. */
  async function settleClaim(stream: string, events: NewEvent[], claim: IdClaim): Promise<AppendResult | null> {
    const firstId = events[0]!.id;
    const waitUntil = elapsed() + claimWaitMs;
    for (;;) {
      if (claim.state === 'none') return null;
      if (claim.state === 'written') {
        if (claim.stream !== stream) throw idInOtherStreamError(firstId, claim.stream, stream);
        return answerRepeated(stream, claim.revision, events);
      }
      const at = await claimedEventsAt(claim);
      if (at !== null) {
        // Found, not written by this append: only a writer that read back its own events
        // records them, so of two racing appends exactly one reports having written them.
        if (claim.stream !== stream) throw idInOtherStreamError(firstId, claim.stream, stream);
        return answerRepeated(stream, at, events);
      }
      // Claimed for this stream and not written: this append is the claimant again (a retry
      // after a crash, or a twin racing it); EventStoreDB's idempotent write sorts out twins.
      if (claim.stream === stream) return null;
      if (elapsed() >= waitUntil) {
        throw new Error(`event id ${firstId} is claimed by an append to ${claim.stream} that has not written it: ids are unique across the log, refusing it for ${stream}`);
      }
      await sleepMs(25);
      claim = await readClaim(firstId);
    }
  }

  // --- appends -----------------------------------------------------------------------------

  async function readHead(stream: string): Promise<StoredEvent | undefined> {
    const [last] = await readStreamEvents(stream, END, 1, BACKWARDS);
    if (last) return last;
    // Empty to a read: new, or soft-deleted/truncated with its numbering gone on.
    const { metadata } = await client.getStreamMetadata(stream);
    const refused = emptyStreamHistoryError(stream, metadata?.truncateBefore);
    if (refused) throw refused;
    return undefined;
  }

  async function readBack(stream: string, prepared: PreparedEvent[]): Promise<{ stored: StoredEvent[]; twin: boolean }> {
    // Positions exist only once written, and every event of a batch has its own.
    const first = prepared[0]!;
    const stored = await readStreamEvents(stream, toEsdbRevision(first.revision), prepared.length, FORWARDS);
    if (stored.length !== prepared.length || stored.some((e, i) => !sameEventId(e.id, prepared[i]!.id))) {
      throw new Error(`EventStoreDB accepted the append to ${stream} at revision ${first.revision} but holds other events there`);
    }
    // A twin append with the same ids that won the race makes EventStoreDB answer success
    // without writing (idempotent write); the stored events then carry the twin's stamp and hashes.
    return { stored, twin: stored.some((e, i) => e.hash !== prepared[i]!.hash) };
  }

  /**
   * On a conflict: did an identical append (same ids) win the race? Then this one is its
   * duplicate, not a conflict, as it would be had it come a moment later.
   */
  async function twinWrote(stream: string, events: NewEvent[]): Promise<AppendResult | null> {
    return settleClaim(stream, events, await readClaim(events[0]!.id));
  }

  async function append(stream: string, events: NewEvent[], expectedRevision: number | 'no_stream' | 'any'): Promise<AppendResult> {
    if (events.length === 0) {
      const last = await readHead(stream);
      const current = last?.revision ?? -1;
      const want = wantedRevision(expectedRevision, current);
      if (want !== current) throw new ConcurrencyError(stream, want, current);
      return { revision: current, position: last?.position ?? '0', events: [], duplicate: false };
    }
    const firstId = events[0]!.id;
    const started = elapsed();
    for (let attempt = 1; ; attempt++) {
      const claim = await readClaim(firstId);
      const answered = await settleClaim(stream, events, claim);
      if (answered) return answered;

      const last = await readHead(stream);
      const current = last?.revision ?? -1;
      const want = wantedRevision(expectedRevision, current);
      if (want !== current) {
        const twin = await twinWrote(stream, events);
        if (twin) return twin;
        throw new ConcurrencyError(stream, want, current);
      }

      if (claim.state === 'none') {
        const ids = events.map((e) => e.id);
        // Lost to another claimant of the same id: read what it claimed and start over.
        if (!(await appendIfAt(idClaimStream(firstId), [claimEvent(ID_CLAIMED, claimedData(stream, ids, current + 1))], NO_STREAM))) continue;
      }

      const prepared = prepareAppend(stream, events, headOf(last), now());
      try {
        // Always the exact revision read, even for `any`: prevHash was computed from that head.
        const result = await client.appendToStream(stream, prepared.map(toEsdbEvent), { expectedRevision: toEsdbExpectedRevision(current) });
        checkAppendResult(stream, want, result);
      } catch (err) {
        const mapped = mapAppendError(stream, want, err);
        if (!(mapped instanceof ConcurrencyError)) throw mapped;
        const twin = await twinWrote(stream, events);
        if (twin) return twin;
        if (expectedRevision !== 'any') throw mapped;
        // `any` means no check: the head moved under us, so continue the chain from the new one.
        const delay = anyRetryDelay(attempt, elapsed() - started, anyRetryMs);
        if (delay === null) throw anyContentionError(stream, anyRetryMs, attempt);
        await sleepMs(delay);
        continue;
      }
      const { stored, twin } = await readBack(stream, prepared);
      const lastStored = stored.at(-1)!;
      // Other hashes than ours: a twin wrote them and will record them.
      if (twin) return { revision: lastStored.revision, position: lastStored.position, events: stored, duplicate: true };
      // Exactly one of two identical appends records them against the claim; the other (its
      // write was EventStoreDB's idempotent no-op with the very same hashes, as happens within
      // one millisecond) learns here that the events it reports were written by its twin.
      const won = await markWritten(firstId, stream, stored[0]!.revision);
      if (!won) {
        const after = await readClaim(firstId);
        if (after.state !== 'written' || after.stream !== stream || after.revision !== stored[0]!.revision) {
          throw new Error(`event id ${firstId} was recorded for ${after.state === 'none' ? 'nothing' : after.stream} while this append found it in ${stream}@${stored[0]!.revision}`);
        }
      }
      return { revision: lastStored.revision, position: lastStored.position, events: stored, duplicate: !won };
    }
  }

  let closed = false;
  const openSubscriptions = new Set<Subscription>();
  // listStreams: streams in order of creation, and how far $all has been read for them.
  const knownStreams = new Set<string>();
  let streamsReadUpTo: EsdbPosition | null = null;
  let streamsScan: Promise<string[]> | null = null;

  const store: EsdbEventStore = {
    client,

    append: (stream, events, { expectedRevision }) => append(stream, events, expectedRevision),

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
      await scanForward(after === null ? null : decodePosition(after), Math.min(ALL_PAGE, Math.max(32, limit + 1)), (e) => out.push(e) < limit);
      return out;
    },

    async headPosition() {
      return (await lastOwnEvent())?.position ?? null;
    },

    async lastRecordedAt() {
      return (await lastOwnEvent())?.metadata.recordedAt ?? null;
    },

    listStreams() {
      // One walk at a time; each goes on from where the last one stopped.
      streamsScan ??= (async () => {
        try {
          streamsReadUpTo = await scanForward(streamsReadUpTo, ALL_PAGE, (e) => {
            knownStreams.add(e.stream);
            return true;
          });
          return [...knownStreams];
        } finally {
          streamsScan = null;
        }
      })();
      return streamsScan;
    },

    subscribe(opts: SubscribeOptions): Subscription {
      const batchSize = Math.max(1, opts.batchSize ?? 500);
      let active = true;
      let cursor: SubscriptionCursor | null = null;
      // Read through a function: the cursor is made inside an attempt (its position may be bad).
      const delivered = (): Position | null => (cursor ? cursor.after : opts.after);
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

      // One catch-up subscription per attempt; a failure (bad position, server, network or
      // handler) ends the attempt and the next one starts from the cursor's resume point.
      async function attempt(): Promise<AttemptOutcome> {
        const state: { failure: { err: unknown } | null; over: boolean } = { failure: null, over: false };
        const fail = (err: unknown) => {
          state.failure ??= { err };
          poke();
        };
        let sub: ReturnType<typeof client.subscribeToAll> | null = null;
        try {
          cursor ??= new SubscriptionCursor(opts.after);
          const c = cursor;
          c.reset();
          const s = client.subscribeToAll({
            fromPosition: c.resumeFrom ?? START,
            filter: streamNameFilter({
              prefixes: [...prefixes],
              checkpointInterval: CHECKPOINT_INTERVAL,
              checkpointReached: (_sub, position) => {
                if (!state.over) c.checkpoint(position);
              },
            }),
          });
          sub = s;
          s.on('data', (resolved: AllStreamResolvedEvent) => {
            if (state.over) return;
            try {
              if (!isOwnEvent(resolved, prefixes)) return;
              // Subscription starts are exclusive; the cursor guards against a server that differs.
              if (!c.received(fromResolvedEvent(resolved), positionOf(resolved))) return;
            } catch (err) {
              fail(err);
              return;
            }
            // Hold the server back while the handler is busy: gRPC flow control does the rest.
            if (c.pending >= batchSize) s.pause();
            poke();
          });
          s.on('error', (err: Error) => {
            if (!state.over) fail(err);
          });
          s.on('end', () => {
            if (!state.over) fail(new Error('EventStoreDB ended the $all subscription'));
          });
          while (active && !state.failure) {
            const batch = c.nextBatch(batchSize);
            if (batch.length === 0) {
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              continue;
            }
            try {
              await opts.onEvents(batch);
            } catch (err) {
              fail(err);
              break;
            }
            c.handled(batch);
            if (s.isPaused() && c.pending < batchSize) s.resume();
          }
        } catch (err) {
          fail(err);
        } finally {
          state.over = true;
          try {
            await sub?.unsubscribe();
          } catch (err) {
            // Reported as this attempt's failure unless an earlier one (likely its cause) is.
            state.failure ??= { err };
          }
        }
        return state.failure ? { failed: true, err: state.failure.err } : { failed: false };
      }

      const done = superviseSubscription({
        isActive: () => active,
        attempt,
        delivered,
        onError: (err) => opts.onError(err),
        logError,
        sleep,
      });

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
