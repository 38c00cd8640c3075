// Pure translation between the ledger's events and EventStoreDB records. No client, no I/O:
// everything the EventStoreDB adapter decides about shapes, positions and revisions lives here
// so it is unit-tested without a server. The adapter itself only sequences calls.
import { END, NO_STREAM, START, StreamDeletedError, WrongExpectedVersionError, jsonEvent } from '@eventstore/db-client';
import type { AppendExpectedRevision, CurrentRevision, EventData, JSONType, Position as EsdbPosition } from '@eventstore/db-client';
import { ConcurrencyError } from '@cm/domain';
import type { EventMetadata, ExpectedRevision, NewEvent, Position, StoredEvent } from './event-store.js';
import { CURRENT_HASH_SCHEME, eventHash, genesisHash } from './hash-chain.js';

export const DEFAULT_STREAM_PREFIXES: readonly string[] = ['agreement-', 'review-'];

export type LedgerMetadata = StoredEvent['metadata'];

/** What an EventStoreDB record carries as metadata: the caller's, `recordedAt`, and the chain. */
export type EsdbMetadata = LedgerMetadata & { prevHash: string; hash: string };

/**
 * The part of a recorded event the ledger reads. The client's `ResolvedEvent` (stream reads)
 * and `AllStreamResolvedEvent` ($all reads, subscriptions) both fit it, and tests can build it.
 */
export type EsdbRecord = {
  streamId: string;
  id: string;
  revision: bigint;
  type: string;
  isJson: boolean;
  data: unknown;
  metadata: unknown;
  position?: EsdbPosition | undefined;
};
export type EsdbResolvedEvent = { event?: EsdbRecord | undefined; commitPosition?: bigint | undefined };

/** The last event of a stream, as far as the next append needs it. */
export type StreamHead = { revision: number; hash: string; recordedAt: string };

/** An event ready to be written: everything but its position, which only the server assigns. */
export type PreparedEvent = Omit<StoredEvent, 'position'>;

// --- positions ---------------------------------------------------------------------------

// EventStoreDB reports "no position" as the field default 0/0 (stream reads before 22.6) or as
// uint64 max; neither can be a real event: the log opens with a system record at 0.
const UNKNOWN_POSITION_FLOOR = 2n ** 63n;

export function isKnownPosition(p: EsdbPosition): boolean {
  if (p.commit === 0n && p.prepare === 0n) return false;
  return p.commit >= 0n && p.commit < UNKNOWN_POSITION_FLOOR && p.prepare >= 0n && p.prepare < UNKNOWN_POSITION_FLOOR;
}

/**
 * The port's positions are single decimals compared as bigints. Every event appended over gRPC
 * is its own implicit transaction, so its $all commit position equals its prepare position and
 * the commit alone orders and identifies it. Legacy explicit transactions (TCP client) share one
 * commit among several events; those cannot be told apart by a decimal and are refused rather
 * than silently collapsed, since a collapsed position would make a subscriber skip events.
 */
export function encodePosition(p: EsdbPosition): Position {
  if (!isKnownPosition(p)) throw new Error(`EventStoreDB position ${p.commit}/${p.prepare} is not a real log position`);
  if (p.commit !== p.prepare) {
    throw new Error(`EventStoreDB position ${p.commit}/${p.prepare} belongs to an explicit transaction; the ledger only reads events appended one append at a time`);
  }
  return p.commit.toString(10);
}

export function decodePosition(position: Position): EsdbPosition {
  if (!/^\d{1,20}$/.test(position)) throw new Error(`not a ledger position: ${JSON.stringify(position)}`);
  const commit = BigInt(position);
  return { commit, prepare: commit };
}

/** Log order of two $all positions: by commit, then by prepare inside a commit. */
export function compareEsdbPositions(a: EsdbPosition, b: EsdbPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

/** Where a resolved event sits in $all; stream reads may only carry the commit position. */
export function positionOf(resolved: EsdbResolvedEvent): EsdbPosition | undefined {
  const own = resolved.event?.position;
  if (own && isKnownPosition(own)) return own;
  const commit = resolved.commitPosition;
  const fromCommit = commit === undefined ? undefined : { commit, prepare: commit };
  return fromCommit && isKnownPosition(fromCommit) ? fromCommit : undefined;
}

// --- revisions ---------------------------------------------------------------------------

/** The stream revision an append must find, given what the caller expects and what the stream is at. */
export function wantedRevision(expected: ExpectedRevision, current: number): number {
  if (expected === 'any') return current;
  if (expected === 'no_stream') return -1;
  return expected;
}

/** -1 (no stream) and revisions as EventStoreDB takes them for an exact-revision append. */
export function toEsdbExpectedRevision(revision: number): AppendExpectedRevision {
  if (!Number.isSafeInteger(revision) || revision < -1) throw new Error(`not a stream revision: ${revision}`);
  return revision === -1 ? NO_STREAM : BigInt(revision);
}

export function toEsdbRevision(revision: number): bigint {
  if (!Number.isSafeInteger(revision) || revision < 0) throw new Error(`not a stream revision: ${revision}`);
  return BigInt(revision);
}

export function fromEsdbRevision(revision: bigint | CurrentRevision | AppendExpectedRevision): number {
  if (revision === NO_STREAM) return -1;
  if (typeof revision !== 'bigint') throw new Error(`EventStoreDB revision ${revision} has no number`);
  const n = Number(revision);
  if (!Number.isSafeInteger(n)) throw new Error(`EventStoreDB revision ${revision} is beyond a safe integer`);
  return n;
}

// --- events ------------------------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** EventStoreDB stores event ids as GUIDs and answers them in lower case. */
export function sameEventId(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export function isOwnStream(stream: string, prefixes: readonly string[]): boolean {
  return !stream.startsWith('$') && prefixes.some((p) => stream.startsWith(p));
}

/** True for events of this service's streams; false for system records, links and other tenants. */
export function isOwnEvent(resolved: EsdbResolvedEvent, prefixes: readonly string[]): boolean {
  const e = resolved.event;
  return e !== undefined && !e.type.startsWith('$') && isOwnStream(e.streamId, prefixes);
}

/** recordedAt never goes backwards within a stream, so "as of an instant" is a prefix of it. */
export function stampRecordedAt(now: Date, head: StreamHead | null): string {
  const clock = now.toISOString();
  return head && head.recordedAt > clock ? head.recordedAt : clock;
}

// The hash must cover exactly what a later read returns, so it is computed over the JSON form.
function asJson<T>(value: T, what: string): T {
  const text = JSON.stringify(value);
  if (text === undefined) throw new Error(`${what} cannot be written as JSON`);
  return JSON.parse(text) as T;
}

/** Revisions, recordedAt and the hash chain for events appended after `head` (null: a new stream). */
export function prepareAppend(stream: string, events: readonly NewEvent[], head: StreamHead | null, now: Date): PreparedEvent[] {
  const recordedAt = stampRecordedAt(now, head);
  let prevHash = head?.hash ?? genesisHash(CURRENT_HASH_SCHEME, stream);
  let revision = head?.revision ?? -1;
  return events.map((e) => {
    if (!UUID.test(e.id)) throw new Error(`event id ${JSON.stringify(e.id)} is not a UUID, which EventStoreDB requires`);
    revision++;
    const data = asJson(e.data, `data of event ${e.id}`);
    const metadata: LedgerMetadata = { ...asJson(e.metadata, `metadata of event ${e.id}`), recordedAt, hashScheme: CURRENT_HASH_SCHEME };
    const hash = eventHash({ stream, id: e.id, revision, prevHash, type: e.type, data, metadata });
    const prepared: PreparedEvent = { id: e.id, stream, revision, type: e.type, data, metadata, prevHash, hash };
    prevHash = hash;
    return prepared;
  });
}

export function joinMetadata(metadata: LedgerMetadata, prevHash: string, hash: string): EsdbMetadata {
  return { ...metadata, prevHash, hash };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Takes the chain out of a record's metadata; what remains is what the event was hashed with. */
export function splitMetadata(raw: unknown, where: string): { metadata: LedgerMetadata; prevHash: string; hash: string } {
  if (!isRecord(raw)) throw new Error(`${where} has no JSON metadata: it was not written by the ledger`);
  const { prevHash, hash, ...rest } = raw;
  for (const key of ['recordedAt', 'actor', 'occurredAt', 'correlationId'] as const) {
    if (typeof rest[key] !== 'string') throw new Error(`${where} lacks metadata.${key}: it was not written by the ledger`);
  }
  if (typeof prevHash !== 'string' || typeof hash !== 'string') throw new Error(`${where} lacks its hash chain: it was not written by the ledger`);
  return { metadata: rest as LedgerMetadata, prevHash, hash };
}

export function toEsdbEvent(e: PreparedEvent): EventData {
  // JSON.stringify writes any JSON value; the client's type only names the object-like ones.
  return jsonEvent({ id: e.id, type: e.type, data: e.data as JSONType, metadata: joinMetadata(e.metadata, e.prevHash, e.hash) });
}

export function fromResolvedEvent(resolved: EsdbResolvedEvent): StoredEvent {
  const e = resolved.event;
  if (!e) throw new Error('EventStoreDB answered a link whose event is gone');
  const where = `event ${e.id} (${e.streamId}@${e.revision})`;
  if (!e.isJson) throw new Error(`${where} is binary: it was not written by the ledger`);
  const position = positionOf(resolved);
  if (!position) throw new Error(`${where} came without a log position: EventStoreDB 22.6 or later is required`);
  const { metadata, prevHash, hash } = splitMetadata(e.metadata, where);
  return {
    id: e.id,
    stream: e.streamId,
    revision: fromEsdbRevision(e.revision),
    position: encodePosition(position),
    type: e.type,
    data: e.data,
    metadata,
    prevHash,
    hash,
  };
}

/** The chain head a new append continues from, taken from the stream's last stored event. */
export function headOf(last: StoredEvent | undefined): StreamHead | null {
  return last ? { revision: last.revision, hash: last.hash, recordedAt: last.metadata.recordedAt } : null;
}

// --- append outcomes -----------------------------------------------------------------------

/** The port's conflict for an exact-revision append EventStoreDB refused. */
export function appendConflict(stream: string, want: number, actual: bigint | CurrentRevision | AppendExpectedRevision): ConcurrencyError {
  let current: number;
  try {
    current = fromEsdbRevision(actual);
  } catch {
    current = -1;
  }
  return new ConcurrencyError(stream, want, current);
}

/**
 * With `throwOnAppendFailure=false` in the connection string the client resolves a refused
 * append as `{success: false}` instead of throwing: both mean the same conflict here.
 */
export function checkAppendResult(stream: string, want: number, result: { success: boolean; nextExpectedRevision: bigint }): void {
  if (!result.success) throw appendConflict(stream, want, result.nextExpectedRevision);
}

/**
 * What an append's failure means to the port: EventStoreDB's wrong-expected-version is the
 * port's conflict, a tombstone a clear refusal; anything else stays as it was thrown.
 */
export function mapAppendError(stream: string, want: number, err: unknown): unknown {
  if (err instanceof ConcurrencyError) return err;
  if (err instanceof WrongExpectedVersionError) return appendConflict(stream, want, err.actualVersion);
  if (err instanceof StreamDeletedError) return deletedStreamError(stream);
  return err;
}

/** A tombstoned (hard-deleted) stream: EventStoreDB refuses it for good. */
export function deletedStreamError(stream: string): Error {
  return new Error(`stream ${stream} was deleted for good (tombstoned) in EventStoreDB: the ledger cannot append to it or read its history`);
}

/** A soft-deleted or truncated stream: it reads empty, but its numbering and chain went on. */
export function reusedStreamError(stream: string, truncateBefore: string): Error {
  return new Error(
    `stream ${stream} reads empty but EventStoreDB keeps its history hidden (truncateBefore ${truncateBefore}: soft-deleted or truncated); ` +
      'appending would restart its hash chain at revision 0 where EventStoreDB numbers on: refused. Restore the stream metadata or use another stream',
  );
}

/**
 * Whether a stream that reads empty may be started as new: only if EventStoreDB hides no
 * earlier events of it. Soft deletion sets truncateBefore to END; truncation to a number > 0.
 */
export function emptyStreamHistoryError(stream: string, truncateBefore: typeof START | typeof END | number | bigint | undefined): Error | null {
  if (truncateBefore === undefined || truncateBefore === START) return null;
  // The server writes soft deletion as $tb = long.MaxValue, which JSON hands over as ~9.2e18.
  if (truncateBefore === END || Number(truncateBefore) >= 2 ** 62) return reusedStreamError(stream, 'end (soft-deleted)');
  if (!(Number(truncateBefore) > 0)) return null;
  return reusedStreamError(stream, String(truncateBefore));
}

// --- expected revision `any` ---------------------------------------------------------------

export const DEFAULT_ANY_RETRY_MS = 10_000;

/**
 * `any` means no check for the caller, but the chain needs the exact head its prevHash came
 * from, so a lost race re-reads the head and tries again. Retries are bounded by time, not by
 * count: the delay to wait before attempt `attempt + 1`, or null once `anyRetryMs` has passed.
 */
export function anyRetryDelay(attempt: number, elapsedMs: number, anyRetryMs: number, random = Math.random): number | null {
  if (elapsedMs >= anyRetryMs) return null;
  const cap = Math.min(250, 2 ** Math.min(attempt, 8));
  return Math.min(anyRetryMs - elapsedMs, Math.floor(random() * cap));
}

export function anyContentionError(stream: string, anyRetryMs: number, attempts: number): Error {
  return new Error(`stream ${stream} kept moving for ${anyRetryMs} ms (${attempts} attempts) while appending with expected revision any: try again`);
}

// --- event id claims -----------------------------------------------------------------------

// EventStoreDB finds events only by stream, so each append claims its first event id in a
// stream of its own; `no_stream` makes exactly one claimant win, across all streams.
export const ID_CLAIM_PREFIX = 'ledger-event-id-';
export const ID_CLAIMED = 'LedgerEventIdClaimed';
export const ID_WRITTEN = 'LedgerEventIdWritten';

export function idClaimStream(id: string): string {
  if (!UUID.test(id)) throw new Error(`event id ${JSON.stringify(id)} is not a UUID, which EventStoreDB requires`);
  return `${ID_CLAIM_PREFIX}${id.toLowerCase()}`;
}

export type IdClaim =
  | { state: 'none' }
  /** Claimed for `stream`, whose head was `fromRevision - 1` then; the events may not be written yet. */
  | { state: 'claimed'; stream: string; ids: string[]; fromRevision: number }
  /** The events are in `stream` from `revision` on. */
  | { state: 'written'; stream: string; ids: string[]; revision: number };

export type ClaimRecord = { type: string; data: unknown };

export function claimedData(stream: string, ids: readonly string[], fromRevision: number) {
  return { stream, ids: ids.map((i) => i.toLowerCase()), fromRevision };
}

export function writtenData(stream: string, revision: number) {
  return { stream, revision };
}

/** Folds a claim stream (read forwards) into what it says about the id. */
export function readIdClaim(records: readonly ClaimRecord[]): IdClaim {
  let claim: IdClaim = { state: 'none' };
  for (const r of records) {
    if (!isRecord(r.data)) throw new Error(`id claim record ${r.type} has no JSON data`);
    const d = r.data;
    if (r.type === ID_CLAIMED) {
      if (typeof d.stream !== 'string' || !Array.isArray(d.ids) || typeof d.fromRevision !== 'number') throw new Error('malformed id claim');
      claim = { state: 'claimed', stream: d.stream, ids: d.ids.map(String), fromRevision: d.fromRevision };
    } else if (r.type === ID_WRITTEN) {
      if (claim.state === 'none' || typeof d.revision !== 'number' || d.stream !== claim.stream) throw new Error('malformed id claim');
      claim = { state: 'written', stream: claim.stream, ids: claim.ids, revision: d.revision };
    }
  }
  return claim;
}

/** Ids are unique across the log: the same id again in another stream is refused, as SQLite does. */
export function idInOtherStreamError(id: string, claimedBy: string, stream: string): Error {
  return new Error(`event ${id} was already appended to stream ${claimedBy}, not ${stream}`);
}

/** The events a claim names are the ones appended again only if every id matches, in order. */
export function sameIds(claimed: readonly string[], events: readonly { id: string }[]): boolean {
  return claimed.length === events.length && events.every((e, i) => sameEventId(e.id, claimed[i]!));
}

// --- subscriptions -------------------------------------------------------------------------

/**
 * Where a subscription is and where its next attempt resumes. Events and the server's
 * checkpoints arrive in log order; a checkpoint moves the resume point only once every event
 * received before it has been handled, so a reconnect skips what the filter skipped and
 * redelivers nothing handled, loses nothing unhandled.
 */
export class SubscriptionCursor {
  /** The last position the handler finished (the port's `after`). */
  after: Position | null;
  /** Exclusive start of the next attempt: the later of `after` and the last applicable checkpoint. */
  resumeFrom: EsdbPosition | null;
  private queue: ({ event: StoredEvent } | { checkpoint: EsdbPosition })[] = [];
  private events = 0;

  constructor(after: Position | null) {
    this.after = after;
    this.resumeFrom = after === null ? null : decodePosition(after);
  }

  get pending(): number {
    return this.events;
  }

  /** An event the server sent; false when it is at or before the resume point (already seen). */
  received(event: StoredEvent, at: EsdbPosition | undefined): boolean {
    if (this.resumeFrom && at && compareEsdbPositions(at, this.resumeFrom) <= 0) return false;
    this.queue.push({ event });
    this.events++;
    return true;
  }

  checkpoint(at: EsdbPosition): void {
    this.queue.push({ checkpoint: at });
    this.settle();
  }

  /** Up to `max` events to hand over; they count as handled only after `handled`. */
  nextBatch(max: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const item of this.queue) {
      if (out.length >= max) break;
      if ('event' in item) out.push(item.event);
    }
    return out;
  }

  handled(batch: readonly StoredEvent[]): void {
    let left = batch.length;
    while (left > 0) {
      const item = this.queue.shift();
      if (!item) throw new Error('handled more events than were received');
      if ('event' in item) {
        left--;
        this.events--;
        this.after = item.event.position;
        this.advance(decodePosition(item.event.position));
      } else {
        this.advance(item.checkpoint);
      }
    }
    this.settle();
  }

  /** A failed attempt: what was received but not handled is received again on the next one. */
  reset(): void {
    this.queue = [];
    this.events = 0;
  }

  private settle(): void {
    while (this.queue.length > 0 && 'checkpoint' in this.queue[0]!) this.advance((this.queue.shift() as { checkpoint: EsdbPosition }).checkpoint);
  }

  private advance(p: EsdbPosition): void {
    if (!this.resumeFrom || compareEsdbPositions(p, this.resumeFrom) > 0) this.resumeFrom = p;
  }
}

export const RESUBSCRIBE_MIN_MS = 100;
export const RESUBSCRIBE_MAX_MS = 5000;

/** The wait before the next attempt: doubling while nothing gets through, reset once something did. */
export function resubscribeDelay(previous: number | null, deliveredSince: boolean): number {
  if (previous === null || deliveredSince) return RESUBSCRIBE_MIN_MS;
  return Math.min(RESUBSCRIBE_MAX_MS, previous * 2);
}

export type AttemptOutcome = { failed: false } | { failed: true; err: unknown };

/**
 * Runs subscription attempts until `isActive()` turns false. Nothing an attempt or the
 * subscriber's `onError` throws ends it: a failure is reported, then retried after a backoff
 * that resets once events got through (`delivered()` moved).
 */
export async function superviseSubscription(loop: {
  isActive(): boolean;
  attempt(): Promise<AttemptOutcome>;
  delivered(): Position | null;
  onError(err: unknown): void;
  logError(message: string, err: unknown): void;
  sleep(ms: number): Promise<void>;
}): Promise<void> {
  let delay: number | null = null;
  while (loop.isActive()) {
    const deliveredBefore = loop.delivered();
    let result: AttemptOutcome;
    try {
      result = await loop.attempt();
    } catch (err) {
      result = { failed: true, err };
    }
    if (!loop.isActive()) break;
    if (!result.failed) continue;
    try {
      loop.onError(result.err);
    } catch (err) {
      try {
        loop.logError('EventStoreDB subscription: onError threw; resubscribing anyway', err);
      } catch {
        // Nothing left to report to.
      }
    }
    delay = resubscribeDelay(delay, loop.delivered() !== deliveredBefore);
    await loop.sleep(delay);
  }
}
