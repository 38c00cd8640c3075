// Tamper evidence: each event's hash covers the previous hash, its type, data and metadata,
// in RFC 8785 canonical JSON, so rewriting any event breaks every hash after it.
import type { EventMetadata, StoredEvent } from './event-store';
import { GENESIS_HASH, eventHash as hashOf } from './event-hash.mjs';

export { GENESIS_HASH };

export function eventHash(prevHash: string, type: string, data: unknown, metadata: EventMetadata & { recordedAt: string }): string {
  return hashOf(prevHash, type, data, metadata);
}

export type IntegrityReport = {
  valid: boolean;
  events: number;
  lastHash: string | null;
  firstInvalidRevision: number | null;
};

/** Verifies a whole stream, read from revision 0, in order. */
export function verifyChain(events: readonly StoredEvent[]): IntegrityReport {
  let prev = GENESIS_HASH;
  let expectedRevision = 0;
  for (const e of events) {
    const ok =
      e.revision === expectedRevision &&
      e.prevHash === prev &&
      eventHash(prev, e.type, e.data, e.metadata) === e.hash;
    if (!ok) return { valid: false, events: events.length, lastHash: events.at(-1)?.hash ?? null, firstInvalidRevision: expectedRevision };
    prev = e.hash;
    expectedRevision++;
  }
  return { valid: true, events: events.length, lastHash: events.at(-1)?.hash ?? null, firstInvalidRevision: null };
}
