// The EventStore port: what the core needs from a log, whatever engine holds it.
// Positions are opaque to clients but are decimal bigints inside, so any adapter can
// compare them (SQLite: the row's global sequence; EventStoreDB: the commit position).

export type Position = string;

export type EventMetadata = {
  actor: string;
  /** When it happened in the world, as the caller said. */
  occurredAt: string;
  correlationId: string;
  causationId?: string;
  /** The file a bulk import took the command from (its SHA-256 and name as the caller gave it). */
  source?: EventSource;
};

export type EventSource = { kind: 'import'; sha256: string; fileName: string | null };

export type NewEvent = {
  /** Unique across the log: appending the same id again is a no-op. */
  id: string;
  type: string;
  data: unknown;
  metadata: EventMetadata;
};

export type StoredEvent = {
  id: string;
  stream: string;
  /** 0 for a stream's first event. */
  revision: number;
  position: Position;
  type: string;
  data: unknown;
  /**
   * Metadata as given plus what the store stamps: `recordedAt`, and `hashScheme` (2 for events
   * written now; absent on events written under scheme 1). Both are covered by the hash.
   */
  metadata: EventMetadata & { recordedAt: string; hashScheme?: number };
  prevHash: string;
  hash: string;
};

/** `no_stream`: the stream must not exist; a number: its last event's revision; `any`: no check. */
export type ExpectedRevision = number | 'no_stream' | 'any';

export type AppendResult = {
  /** The stream's revision after the append (its last event's). */
  revision: number;
  /** The position of the last event appended (or found, for a repeated append). */
  position: Position;
  events: StoredEvent[];
  /** True when every event id was already in the log: nothing was written. */
  duplicate: boolean;
};

export type ReadStreamOptions = {
  fromRevision?: number;
  /** Inclusive. */
  toRevision?: number;
  /** Only events recorded at or before this instant (ISO 8601). */
  recordedUpTo?: string;
  limit?: number;
};

export type Subscription = { close(): Promise<void> };

export type SubscribeOptions = {
  /** Deliver events after this position; null: from the start of the log. */
  after: Position | null;
  batchSize?: number;
  /** Awaited before the next batch: a subscriber applies batches one at a time, in order. */
  onEvents(events: StoredEvent[]): Promise<void>;
  onError(err: unknown): void;
};

export interface EventStore {
  append(stream: string, events: NewEvent[], options: { expectedRevision: ExpectedRevision }): Promise<AppendResult>;
  /** Events of one stream in revision order; empty when the stream does not exist. */
  readStream(stream: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
  /** The revision of the stream's last event, or -1 when it does not exist. */
  streamRevision(stream: string): Promise<number>;
  /** The global log after a position, in order. */
  readAll(options: { after: Position | null; limit: number }): Promise<StoredEvent[]>;
  /** The position of the last event in the log, or null when the log is empty. */
  headPosition(): Promise<Position | null>;
  subscribe(options: SubscribeOptions): Subscription;
  /** The recordedAt of the log's last event (the hashed copy), or null when the log is empty. */
  lastRecordedAt(): Promise<string | null>;
  /**
   * The store's own record of a stream's last revision and hash, kept apart from its events (the
   * SQLite `streams` table), so /integrity sees a stream whose last events were removed.
   * Optional: a log whose head is its last event (EventStoreDB) has nothing else to compare.
   */
  streamHead?(stream: string): Promise<{ revision: number; hash: string } | null>;
  /** A stored copy that disagrees with what the hash covers (SQLite's recorded_at column), or null. Optional. */
  storageFault?(stream: string): Promise<{ revision: number; reason: string } | null>;
  /** Every stream name, in order of creation (for exports and checks). */
  listStreams(): Promise<string[]>;
  /**
   * Why appends are refused at this moment (the SQLite writer thread stopped and is being
   * restarted), or null when they are taken. Readiness reports it. Optional: a remote log has none.
   */
  unavailable?(): string | null;
  close(): Promise<void>;
}

export function comparePositions(a: Position | null, b: Position | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const POSITION_PATTERN = /^\d{1,20}$/;
