// The Merkle tree against the RFC 6962 test vectors kept by transparency-dev/merkle (testonly:
// LeafInputs, RootHashes, the reference proofs), against the RFC's recursive definitions for every
// size up to 1,000 (every leaf, every pair of sizes, against the RFC's PATH and PROOF; the verifier on
// all of them up to size 300 and a seeded sample above), and with tampered proofs refused.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT, TreeSizeError, appendLeaf, consistencyProof, inclusionProof, leafHash, memoryNodeStore, nodeHash, rootAt, verifyConsistency, verifyInclusion,
  type Hash, type NodeStore,
} from './merkle.js';

const hd = (hex: string) => Buffer.from(hex, 'hex');
const hex = (hs: Hash[]) => hs.map((h) => h.toString('hex'));
const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hd);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION: [number, number, string[]][] = [
  [0, 1, []],
  [0, 2, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7']],
  [1, 2, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

function treeOf(leaves: Hash[]): NodeStore {
  const store = memoryNodeStore();
  for (const l of leaves) appendLeaf(store, l);
  return store;
}

// The RFC's definitions, word for word, over the leaf hashes themselves.
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
const mth = (d: Hash[]): Hash => (d.length === 0 ? EMPTY_ROOT : d.length === 1 ? d[0]! : nodeHash(mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length)))));

/** A copy of a proof with one bit of one hash flipped. */
const flipped = (proof: Hash[], i: number) => proof.map((h, j) => (j === i ? Buffer.from(h.map((b, x) => (x === 7 ? b ^ 1 : b))) : h));

describe('the RFC 6962 test vectors (transparency-dev/merkle testonly)', () => {
  const store = treeOf(LEAF_INPUTS.map(leafHash));
  it('gives the root of every size from 0 to 8', () => {
    expect(ROOTS.map((_, n) => rootAt(store, n).toString('hex'))).toEqual(ROOTS);
  });
  it.each(INCLUSION)('gives the inclusion proof of leaf %i in a tree of size %i', (index, size, want) => {
    const proof = inclusionProof(store, index, size);
    expect(hex(proof)).toEqual(want);
    expect(verifyInclusion(index, size, leafHash(LEAF_INPUTS[index]!), proof, hd(ROOTS[size]!))).toBe(true);
  });
  it.each(CONSISTENCY)('gives the consistency proof from size %i to size %i', (from, to, want) => {
    const proof = consistencyProof(store, from, to);
    expect(hex(proof)).toEqual(want);
    expect(verifyConsistency(from, to, hd(ROOTS[from]!), hd(ROOTS[to]!), proof)).toBe(true);
  });
});

describe('every size up to 1,000', () => {
  const N = 1000;
  // The verifier hashes every step, so it is run on every leaf and every pair of sizes up to
  // VERIFY_ALL, and above that on a seeded sample per size; every proof of every size up to N is
  // still compared, hash for hash, with the RFC's own PATH and PROOF.
  const VERIFY_ALL = 300;
  const SAMPLE = 4;
  const leaves = Array.from({ length: N }, (_, i) => leafHash(Buffer.from(String(i))));
  const store = treeOf(leaves);
  const roots = Array.from({ length: N + 1 }, (_, n) => rootAt(store, n));

  // MTH(D[lo:hi]) by the RFC's recursion over the leaf hashes, each range computed once.
  const ranges = new Map<number, Hash>();
  const mthOf = (lo: number, hi: number): Hash => {
    const key = lo * (N + 1) + hi;
    let h = ranges.get(key);
    if (!h) {
      h = hi - lo === 0 ? EMPTY_ROOT : hi - lo === 1 ? leaves[lo]! : nodeHash(mthOf(lo, lo + k(hi - lo)), mthOf(lo + k(hi - lo), hi));
      ranges.set(key, h);
    }
    return h;
  };
  // PATH(m, D[0:n]) and PROOF(m, D[0:n]) of RFC 9162 2.1.3.1 and 2.1.4.1, unrolled top-down.
  const refPath = (m: number, n: number): Hash[] => {
    const out: Hash[] = [];
    let lo = 0;
    let hi = n;
    while (hi - lo > 1) {
      const s = k(hi - lo);
      if (m < s) {
        out.push(mthOf(lo + s, hi));
        hi = lo + s;
      } else {
        out.push(mthOf(lo, lo + s));
        m -= s;
        lo += s;
      }
    }
    return out.reverse();
  };
  const refProof = (m: number, n: number): Hash[] => {
    if (m === 0 || m === n) return [];
    const out: Hash[] = [];
    let lo = 0;
    let hi = n;
    let whole = true;
    while (m !== hi - lo) {
      const s = k(hi - lo);
      if (m <= s) {
        out.push(mthOf(lo + s, hi));
        hi = lo + s;
      } else {
        out.push(mthOf(lo, lo + s));
        m -= s;
        lo += s;
        whole = false;
      }
    }
    if (!whole) out.push(mthOf(lo, hi));
    return out.reverse();
  };
  const sameProof = (a: Hash[], b: Hash[]) => a.length === b.length && a.every((h, j) => h.equals(b[j]!));

  // mulberry32: the same sample every run.
  let seed = 0x6962;
  const random = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };

  it('the incrementally kept tree has the root the RFC defines, for every size', () => {
    for (let n = 0; n <= N; n++) expect(roots[n]!.equals(mthOf(0, n)), `size ${n}`).toBe(true);
    for (const n of [0, 1, 2, 3, 255, 256, 257, 511, 512, 513, 999, N]) expect(roots[n]!.equals(mth(leaves.slice(0, n))), `size ${n}`).toBe(true);
  });

  it('the reference PATH and PROOF give the RFC 6962 test vectors', () => {
    const vectors = LEAF_INPUTS.map(leafHash);
    ranges.clear();
    const saved = leaves.splice(0, vectors.length, ...vectors);
    try {
      for (const [index, size, want] of INCLUSION) expect(hex(refPath(index, size))).toEqual(want);
      for (const [from, to, want] of CONSISTENCY) expect(hex(refProof(from, to))).toEqual(want);
    } finally {
      leaves.splice(0, vectors.length, ...saved);
      ranges.clear();
    }
  });

  it('proves every leaf in every tree size as the RFC does, and each proof is refused for another leaf, index or size', () => {
    for (let n = 1; n <= N; n++) {
      const checked = n <= VERIFY_ALL ? null : new Set(Array.from({ length: SAMPLE }, () => random(n)));
      for (let i = 0; i < n; i++) {
        const proof = inclusionProof(store, i, n);
        if (!sameProof(proof, refPath(i, n))) throw new Error(`leaf ${i} of size ${n}: not the RFC's PATH`);
        if ((!checked || checked.has(i)) && !verifyInclusion(i, n, leaves[i]!, proof, roots[n]!)) throw new Error(`leaf ${i} of size ${n} does not verify`);
      }
      const i = n - 1;
      const proof = inclusionProof(store, i, n);
      if (!verifyInclusion(i, n, leaves[i]!, proof, roots[n]!)) throw new Error(`leaf ${i} of size ${n} does not verify`);
      if (n > 1) {
        expect(verifyInclusion(i, n, leaves[(i + 1) % n]!, proof, roots[n]!)).toBe(false);
        expect(verifyInclusion(i, n, leaves[i]!, flipped(proof, proof.length - 1), roots[n]!)).toBe(false);
        expect(verifyInclusion(i - 1, n, leaves[i]!, proof, roots[n]!)).toBe(false);
      }
      expect(verifyInclusion(i, n + 1, leaves[i]!, proof, roots[n]!)).toBe(false);
      expect(verifyInclusion(i, n, leaves[i]!, [...proof, leaves[0]!], roots[n]!)).toBe(false);
    }
  }, 300_000);

  it('proves every pair of sizes consistent as the RFC does, and refuses a tampered proof or the wrong roots', () => {
    const refuse = (from: number, to: number, proof: Hash[]) => {
      // Each hash of a proof is flipped in one pair or another.
      if (verifyConsistency(from, to, roots[from]!, roots[to]!, flipped(proof, from % proof.length))) throw new Error(`tampered ${from} -> ${to} verifies`);
      if (verifyConsistency(from, to, roots[from - 1]!, roots[to]!, proof)) throw new Error(`${from} -> ${to} verifies with the root of ${from - 1}`);
      if (verifyConsistency(from, to, roots[from]!, roots[to - 1]!, proof)) throw new Error(`${from} -> ${to} verifies with the root of ${to - 1}`);
      if (verifyConsistency(from, to, roots[from]!, roots[to]!, proof.slice(0, -1))) throw new Error(`${from} -> ${to} verifies shortened`);
    };
    let refused = 0;
    for (let to = 1; to <= N; to++) {
      const checked = to <= VERIFY_ALL ? null : new Set([0, to, ...Array.from({ length: SAMPLE }, () => 1 + random(to - 1))]);
      for (let from = 0; from <= to; from++) {
        const proof = consistencyProof(store, from, to);
        if (!sameProof(proof, refProof(from, to))) throw new Error(`${from} -> ${to}: not the RFC's PROOF`);
        if (checked && !checked.has(from)) continue;
        if (!verifyConsistency(from, to, roots[from]!, roots[to]!, proof)) throw new Error(`${from} -> ${to} does not verify`);
        if (from > 0 && from < to && (checked || (from + to) % 7 === 0)) {
          refuse(from, to, proof);
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(8000);
  }, 300_000);
});

describe('larger random trees', () => {
  it('proves random leaves and sizes of a tree of 100,000 leaves', () => {
    const N = 100_000;
    const store = memoryNodeStore();
    const leaves: Hash[] = [];
    for (let i = 0; i < N; i++) {
      const l = leafHash(randomBytes(32));
      leaves.push(l);
      appendLeaf(store, l);
    }
    const random = (n: number) => Math.floor(Math.random() * n);
    for (let t = 0; t < 200; t++) {
      const to = 1 + random(N);
      const from = random(to + 1);
      const i = random(to);
      expect(verifyInclusion(i, to, leaves[i]!, inclusionProof(store, i, to), rootAt(store, to)), `${i} in ${to}`).toBe(true);
      expect(verifyConsistency(from, to, rootAt(store, from), rootAt(store, to), consistencyProof(store, from, to)), `${from} -> ${to}`).toBe(true);
    }
    expect(rootAt(store, N).equals(mth(leaves))).toBe(true);
  });

  it('refuses sizes beyond the tree', () => {
    const store = treeOf(LEAF_INPUTS.map(leafHash));
    expect(() => rootAt(store, 9)).toThrow(TreeSizeError);
    expect(() => inclusionProof(store, 8, 8)).toThrow(TreeSizeError);
    expect(() => consistencyProof(store, 5, 9)).toThrow(TreeSizeError);
    expect(() => consistencyProof(store, 6, 5)).toThrow(TreeSizeError);
  });
});
