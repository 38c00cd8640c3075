// The Merkle tree of RFC 6962 / RFC 9162 section 2.1 over the whole log: leaf i is the event at
// global order i, its leaf hash SHA-256(0x00 || the 32 bytes of the event's hash), an inner node
// SHA-256(0x01 || left || right). The tree is kept as the hashes of its complete subtrees (a
// `NodeStore`: level 0 the leaves, level k the subtree of 2^k leaves starting at index * 2^k),
// so appending a leaf costs one hash amortised, and a root or proof for any size reads
// O(log^2 n) stored hashes. The proofs and their verifiers follow RFC 9162 2.1.3 and 2.1.4.
import { createHash } from 'node:crypto';

export type Hash = Buffer;

const sha256 = (...parts: Uint8Array[]): Hash => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

/** SHA-256(0x00 || data). */
export const leafHash = (data: Uint8Array): Hash => sha256(LEAF, data);
/** SHA-256(0x01 || left || right). */
export const nodeHash = (left: Uint8Array, right: Uint8Array): Hash => sha256(NODE, left, right);
/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Hash = sha256();
/** The leaf hash of an event: over the 32 bytes its hex `hash` spells. */
export const eventLeafHash = (eventHash: string): Hash => leafHash(Buffer.from(eventHash, 'hex'));

/** The largest power of two smaller than n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Complete subtrees' hashes: `node(level, index)` covers leaves [index * 2^level, (index + 1) * 2^level). */
export interface NodeStore {
  /** How many leaves the tree holds. */
  size(): number;
  /** The stored hash; only asked for complete subtrees within size(). */
  node(level: number, index: number): Hash;
  put(level: number, index: number, hash: Hash): void;
}

export function memoryNodeStore(): NodeStore {
  const levels: Hash[][] = [[]];
  return {
    size: () => levels[0]!.length,
    node(level, index) {
      const h = levels[level]?.[index];
      if (!h) throw new Error(`no stored subtree at level ${level}, index ${index}`);
      return h;
    },
    put(level, index, hash) {
      (levels[level] ??= [])[index] = hash;
    },
  };
}

/** Appends a leaf hash, storing every complete subtree it closes. */
export function appendLeaf(store: NodeStore, leaf: Hash): void {
  let index = store.size();
  let level = 0;
  let hash = leaf;
  store.put(0, index, leaf);
  while (index % 2 === 1) {
    hash = nodeHash(store.node(level, index - 1), hash);
    level++;
    index = Math.floor(index / 2);
    store.put(level, index, hash);
  }
}

// Incomplete subtrees (on a tree's right edge) are computed, then kept: the same few serve every
// proof against the same size. Keyed by store, so no two trees mix; the entries never change
// (a range [lo, hi) of an append-only log always has the same hash).
const incomplete = new WeakMap<NodeStore, Map<string, Hash>>();

/** MTH(D[lo:hi]) of RFC 9162 2.1.1, for the ranges its recursion yields (lo a multiple of the split). */
function subtree(store: NodeStore, lo: number, hi: number): Hash {
  const n = hi - lo;
  if ((n & (n - 1)) === 0 && lo % n === 0) return store.node(Math.log2(n), lo / n);
  let cache = incomplete.get(store);
  if (!cache) incomplete.set(store, (cache = new Map()));
  const key = `${lo}:${hi}`;
  const known = cache.get(key);
  if (known) return known;
  const k = split(n);
  const hash = nodeHash(subtree(store, lo, lo + k), subtree(store, lo + k, hi));
  if (cache.size >= 4096) cache.clear();
  cache.set(key, hash);
  return hash;
}

export class TreeSizeError extends Error {}

function checkSize(store: NodeStore, size: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > store.size()) throw new TreeSizeError(`tree size ${size} is beyond the log's ${store.size()} leaves`);
}

/** The root of the tree of the first `size` leaves. */
export function rootAt(store: NodeStore, size: number): Hash {
  checkSize(store, size);
  return size === 0 ? EMPTY_ROOT : subtree(store, 0, size);
}

/** PATH(index, D[0:size]) of RFC 9162 2.1.3.1: sibling hashes from the leaf up. */
export function inclusionProof(store: NodeStore, index: number, size: number): Hash[] {
  checkSize(store, size);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new TreeSizeError(`leaf ${index} is not in a tree of size ${size}`);
  const path = (m: number, lo: number, hi: number): Hash[] => {
    if (hi - lo === 1) return [];
    const k = split(hi - lo);
    return m < k ? [...path(m, lo, lo + k), subtree(store, lo + k, hi)] : [...path(m - k, lo + k, hi), subtree(store, lo, lo + k)];
  };
  return path(index, 0, size);
}

/** PROOF(from, D[0:to]) of RFC 9162 2.1.4.1; empty for from = 0 or from = to. */
export function consistencyProof(store: NodeStore, from: number, to: number): Hash[] {
  checkSize(store, to);
  if (!Number.isSafeInteger(from) || from < 0 || from > to) throw new TreeSizeError(`tree size ${from} is not within a tree of size ${to}`);
  if (from === 0 || from === to) return [];
  const sub = (m: number, lo: number, hi: number, whole: boolean): Hash[] => {
    const n = hi - lo;
    if (m === n) return whole ? [] : [subtree(store, lo, hi)];
    const k = split(n);
    return m <= k ? [...sub(m, lo, lo + k, whole), subtree(store, lo + k, hi)] : [...sub(m - k, lo + k, hi, false), subtree(store, lo, lo + k)];
  };
  return sub(from, 0, to, true);
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

/** RFC 9162 2.1.3.2: does `proof` show `leaf` at `index` in the tree of `size` with `root`? */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && same(r, root);
}

/** RFC 9162 2.1.4.2: does `proof` show the tree of size `from` with `fromRoot` is a prefix of the one of size `to` with `toRoot`? */
export function verifyConsistency(from: number, to: number, fromRoot: Uint8Array, toRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || from > to) return false;
  if (from === to) return proof.length === 0 && same(fromRoot, toRoot);
  if (from === 0) return proof.length === 0 && same(fromRoot, EMPTY_ROOT);
  if (proof.length === 0) return false;
  const path = (from & (from - 1)) === 0 ? [fromRoot, ...proof] : [...proof];
  let fn = BigInt(from - 1);
  let sn = BigInt(to - 1);
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && same(fr, fromRoot) && same(sr, toRoot);
}
