// Tamper evidence: each event's hash covers the previous hash and the event itself, in RFC 8785
// canonical JSON, so rewriting any event breaks every hash after it. The hash is versioned
// (event-hash.mjs says what each scheme covers): scheme 2 also binds the event to its stream,
// id and revision, and starts each stream from a genesis derived from its name.
import type { StoredEvent } from './event-store.js';
import { CURRENT_HASH_SCHEME, GENESIS_HASH, eventHash as hashOf, genesisHash as genesisOf, hashSchemeOf } from './event-hash.mjs';

export { CURRENT_HASH_SCHEME, GENESIS_HASH };

export type HashScheme = 1 | 2;
export const HASH_SCHEMES: readonly HashScheme[] = [1, 2];

/** What a hash covers: an event as stored, less its own hash (and position, which no scheme covers). */
export type HashedEvent = Pick<StoredEvent, 'stream' | 'id' | 'revision' | 'prevHash' | 'type' | 'data' | 'metadata'>;

/** The hash of an event under the scheme its metadata names (`hashScheme`; absent: scheme 1). */
export function eventHash(e: HashedEvent): string {
  return hashOf(e);
}

/** The scheme an event names, or null when it names one this version does not know. */
export function hashScheme(metadata: StoredEvent['metadata']): HashScheme | null {
  const s = hashSchemeOf(metadata);
  return s === 1 || s === 2 ? s : null;
}

/** The prevHash a stream's first event carries under a scheme. */
export function genesisHash(scheme: HashScheme, stream: string): string {
  return genesisOf(scheme, stream);
}

/**
 * Why an event does not continue its stream's chain, or null when it does. `prev` is the
 * previous event's hash and scheme (null for revision 0). A stream may move from scheme 1 to 2,
 * never back: otherwise a v2 event could be re-hashed as v1 to drop its binding to the stream.
 */
export function chainFault(e: HashedEvent & { hash: string }, prev: { hash: string; scheme: HashScheme } | null): string | null {
  const scheme = hashScheme(e.metadata);
  if (scheme === null) return `hash scheme ${JSON.stringify(e.metadata.hashScheme)} is not one this version knows`;
  if (prev && scheme < prev.scheme) return `hash scheme ${scheme} follows scheme ${prev.scheme}: a stream never goes back to an older scheme`;
  const expectedPrev = prev ? prev.hash : genesisHash(scheme, e.stream);
  if (e.prevHash !== expectedPrev) {
    return prev ? 'prevHash does not link to the hash of the previous event' : `prevHash of revision 0 is not the scheme ${scheme} genesis hash of stream ${e.stream}`;
  }
  if (eventHash(e) !== e.hash) return 'the hash does not match the event: it was changed after it was recorded (or moved to another stream or place)';
  return null;
}

export type StreamHeadRow = { revision: number; hash: string };

export type IntegrityReport = {
  valid: boolean;
  events: number;
  lastHash: string | null;
  firstInvalidRevision: number | null;
  /** Why the stream is invalid; null when valid. */
  reason: string | null;
  /** How many events each hash scheme covers, e.g. { "1": 3, "2": 5 }. */
  schemes: Record<string, number>;
};

/**
 * Verifies a whole stream, read from revision 0, in order. With `head` (the store's own record
 * of the stream's last revision and hash), a stream whose last events were removed is reported
 * too: a chain cut at its end is otherwise still a valid chain.
 */
export function verifyChain(events: readonly StoredEvent[], head?: StreamHeadRow | null): IntegrityReport {
  let prev: { hash: string; scheme: HashScheme } | null = null;
  let expectedRevision = 0;
  const schemes: Record<string, number> = {};
  const lastHash = events.at(-1)?.hash ?? null;
  const invalid = (revision: number, reason: string): IntegrityReport => ({ valid: false, events: events.length, lastHash, firstInvalidRevision: revision, reason, schemes });
  for (const e of events) {
    if (e.revision !== expectedRevision) return invalid(expectedRevision, `revision ${expectedRevision} is missing: the next stored event holds revision ${e.revision}`);
    const fault = chainFault(e, prev);
    if (fault) return invalid(expectedRevision, fault);
    const scheme = hashScheme(e.metadata)!;
    schemes[scheme] = (schemes[scheme] ?? 0) + 1;
    prev = { hash: e.hash, scheme };
    expectedRevision++;
  }
  if (head) {
    const last = expectedRevision - 1;
    if (head.revision > last) return invalid(expectedRevision, `the stream's head says revision ${head.revision} but its events end at revision ${last}: events are missing`);
    if (head.revision < last) return invalid(head.revision + 1, `the stream's head says revision ${head.revision} but events go on to revision ${last}`);
    if (head.hash !== lastHash) return invalid(last, `the stream's head hash ${head.hash} is not its last event's ${lastHash}`);
  }
  return { valid: true, events: events.length, lastHash, firstInvalidRevision: null, reason: null, schemes };
}
