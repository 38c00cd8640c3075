// The hash of one event in a stream's chain, under a versioned scheme. Plain JavaScript so the
// writer thread (sqlite-writer.worker.mjs) loads the very same functions as the rest of the
// store, under any loader; hash-chain.ts gives them their types.
//  - scheme 1 (events whose metadata has no `hashScheme`): SHA-256 over RFC 8785 canonical JSON
//    of {prevHash, type, data, metadata}; every stream starts from 64 zeros. It does not bind an
//    event to its stream, id or revision: rows moved between streams still verify.
//  - scheme 2 (metadata.hashScheme = 2, itself hashed): the same plus {scheme, stream, id,
//    revision}, and a stream's first event links to a genesis derived from the stream name, so
//    an event verifies only in its own stream, at its own place.
// New events are written under CURRENT_HASH_SCHEME; events of scheme 1 keep verifying as such.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export const GENESIS_HASH = '0'.repeat(64);
export const CURRENT_HASH_SCHEME = 2;

const sha256 = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The scheme an event was hashed under, read from its metadata (absent: 1). */
export function hashSchemeOf(metadata) {
  const s = metadata?.hashScheme;
  return s === undefined ? 1 : s;
}

/** The prevHash of a stream's first event under a scheme. */
export function genesisHash(scheme, stream) {
  return scheme === 1 ? GENESIS_HASH : sha256(`ledger-genesis-v2:${stream}`);
}

/** The hash of an event; its scheme is the one its metadata names. Throws for a scheme this code does not know. */
export function eventHash(e) {
  const scheme = hashSchemeOf(e.metadata);
  let body;
  if (scheme === 1) body = { prevHash: e.prevHash, type: e.type, data: e.data, metadata: e.metadata };
  else if (scheme === 2) body = { scheme, stream: e.stream, id: e.id, revision: e.revision, prevHash: e.prevHash, type: e.type, data: e.data, metadata: e.metadata };
  else throw new Error(`hash scheme ${JSON.stringify(scheme)} is not one this version knows`);
  const canonical = canonicalize(body);
  if (canonical === undefined) throw new Error('event cannot be encoded canonically');
  return sha256(canonical);
}
