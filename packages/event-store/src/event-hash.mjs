// The hash of one event in a stream's chain: SHA-256 over RFC 8785 canonical JSON of
// {prevHash, type, data, metadata}. Plain JavaScript so the writer thread
// (sqlite-writer.worker.mjs) loads the very same function as the rest of the store, under any
// loader; hash-chain.ts gives it its types.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export const GENESIS_HASH = '0'.repeat(64);

export function eventHash(prevHash, type, data, metadata) {
  const canonical = canonicalize({ prevHash, type, data, metadata });
  if (canonical === undefined) throw new Error('event cannot be encoded canonically');
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}
