// Pure translation between the ledger's events and EventStoreDB records. No client, no I/O:
// everything the EventStoreDB adapter decides about shapes, positions and revisions lives here
// so it is unit-tested without a server. The adapter itself only sequences calls.
import { NO_STREAM, jsonEvent } from '@eventstore/db-client';
import type { AppendExpectedRevision, CurrentRevision, EventData, JSONType, Position as EsdbPosition } from '@eventstore/db-client';
import type { EventMetadata, ExpectedRevision, NewEvent, Position, StoredEvent } from './event-store';
import { CURRENT_HASH_SCHEME, eventHash, genesisHash } from './hash-chain';

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
