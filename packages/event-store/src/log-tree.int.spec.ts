// The Merkle tree kept in the log's own SQLite file: filled for a log that predates it, grown by
// what is appended after, shared by two processes on one file, and blind to a row rewritten
// after its leaf was taken (the signed roots betray the rewrite).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryLogTree, createSqliteLogTree } from './log-tree.js';
import { EMPTY_ROOT, eventLeafHash, nodeHash, verifyConsistency, verifyInclusion, type Hash } from './merkle.js';
import { createSqliteEventStore, type SqliteEventStore } from './sqlite-event-store.js';

const mth = (d: Hash[]): Hash => {
  if (d.length === 0) return EMPTY_ROOT;
  if (d.length === 1) return d[0]!;
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return nodeHash(mth(d.slice(0, k)), mth(d.slice(k)));
};

const dirs: string[] = [];
const stores: SqliteEventStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function open(path?: string) {
  const p = path ?? join(dirs[dirs.push(mkdtempSync(join(tmpdir(), 'cm-tree-'))) - 1]!, 'events.sqlite');
  const store = createSqliteEventStore({ path: p });
  stores.push(store);
  return { store, path: p };
}
const meta = { actor: 't', occurredAt: '2026-01-01T00:00:00.000Z', correlationId: 'c' };
async function appendMany(store: SqliteEventStore, n: number, prefix: string) {
  for (let i = 0; i < n; i++) await store.append(`s-${prefix}-${i % 3}`, [{ id: `${prefix}-${i}`, type: 'T', data: { i }, metadata: meta }], { expectedRevision: 'any' });
}
const leavesOf = async (store: SqliteEventStore) => (await store.readAll({ after: null, limit: 100_000 })).map((e) => eventLeafHash(e.hash));

describe('the Merkle tree in the SQLite log', () => {
  it('fills in a log that predates it, then grows with appends, with the roots and proofs the RFC defines', async () => {
    const { store } = open();
    await appendMany(store, 40, 'a');
    const progress: number[] = [];
    const tree = createSqliteLogTree(store.db, store, { batch: 7, onProgress: (n) => progress.push(n) });
    expect(await tree.sync()).toBe(40);
    expect(tree.root(40).equals(mth(await leavesOf(store)))).toBe(true);
    await appendMany(store, 25, 'b');
    expect(await tree.sync()).toBe(65);
    const leaves = await leavesOf(store);
    for (let n = 0; n <= 65; n++) expect(tree.root(n).equals(mth(leaves.slice(0, n))), `size ${n}`).toBe(true);
    for (let i = 0; i < 65; i++) expect(verifyInclusion(i, 65, leaves[i]!, tree.inclusion(i, 65), tree.root(65))).toBe(true);
    expect(verifyConsistency(40, 65, tree.root(40), tree.root(65), tree.consistency(40, 65))).toBe(true);
    const all = await store.readAll({ after: null, limit: 1000 });
    expect(all.map((e) => tree.leafIndexOf(e.position))).toEqual(all.map((_, i) => i));
    // Kept in the file: a tree opened again (a restart) starts where it was.
    const again = createSqliteLogTree(store.db, store);
    expect(again.size()).toBe(65);
    expect(again.root(65).equals(tree.root(65))).toBe(true);
  });

  it('is shared by two processes on one file without a leaf taken twice', async () => {
    const a = open();
    const b = open(a.path);
    await appendMany(a.store, 10, 'x');
    const ta = createSqliteLogTree(a.store.db, a.store, { batch: 3 });
    const tb = createSqliteLogTree(b.store.db, b.store, { batch: 3 });
    await Promise.all([ta.sync(), tb.sync(), ta.sync()]);
    await appendMany(b.store, 5, 'y');
    await Promise.all([tb.sync(), ta.sync()]);
    expect(ta.size()).toBe(15);
    expect(tb.root(15).equals(mth(await leavesOf(a.store)))).toBe(true);
  });

  it('keeps the leaf an event had when taken: a row rewritten afterwards no longer matches the root', async () => {
    const { store } = open();
    await appendMany(store, 8, 'r');
    const tree = createSqliteLogTree(store.db, store);
    await tree.sync();
    const before = tree.root(8);
    store.db.prepare("UPDATE events SET hash = ? WHERE event_id = 'r-3'").run('ab'.repeat(32));
    await tree.sync();
    expect(tree.root(8).equals(before)).toBe(true);
    expect(mth(await leavesOf(store)).equals(before)).toBe(false);
  });

  it('in memory (EventStoreDB), derives the same tree from readAll', async () => {
    const { store } = open();
    await appendMany(store, 30, 'm');
    const memory = createMemoryLogTree(store);
    const sqlite = createSqliteLogTree(store.db, store);
    expect(await memory.sync()).toBe(30);
    await sqlite.sync();
    expect(memory.root(30).equals(sqlite.root(30))).toBe(true);
    expect(memory.consistency(7, 30).map((h) => h.toString('hex'))).toEqual(sqlite.consistency(7, 30).map((h) => h.toString('hex')));
  });
});
