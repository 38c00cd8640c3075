// The Merkle tree over the whole log (merkle.ts), kept beside it: leaf i is the i-th event in
// global order. `sync()` appends the leaves of events recorded since the last one it saw, so the
// tree grows by what was appended, never rebuilt. Kept in the SQLite file itself
// (`merkle_leaves`: leaf index, event position, leaf hash; `merkle_nodes`: complete subtrees),
// filled once for a log that predates it; in memory for EventStoreDB, filled from readAll at
// start. A leaf is the hash the event had when the tree took it: an event rewritten afterwards
// keeps its old leaf, so the signed roots betray the rewrite.
import type Database from 'better-sqlite3';
import type { EventStore, Position } from './event-store.js';
import { appendLeaf, consistencyProof, eventLeafHash, inclusionProof, memoryNodeStore, rootAt, type Hash, type NodeStore } from './merkle.js';

export type LogTree = {
  /** Takes in every event appended since the last sync; answers the tree's size after. */
  sync(): Promise<number>;
  size(): number;
  root(size: number): Hash;
  inclusion(leafIndex: number, treeSize: number): Hash[];
  consistency(from: number, to: number): Hash[];
  /** The leaf index of the event at `position`, or null when the tree has not taken it in (yet). */
  leafIndexOf(position: Position): number | null;
  /** The stored leaf hash at an index. */
  leaf(index: number): Hash;
};

type Backing = {
  store: NodeStore;
  lastPosition(): Position | null;
  /** Runs `fn` as one write; `fn` answers false to give up (another process took the same events in). */
  write(fn: () => boolean): boolean;
  setPosition(position: Position): void;
  leafIndexOf(position: Position): number | null;
  /** Reads only the positions and hashes of the next events, when the log is at hand (SQLite). */
  readLeaves?(after: Position | null, limit: number): { position: Position; hash: string }[];
};

export type LogTreeOptions = { batch?: number; onProgress?: (leaves: number) => void };

function createLogTree(eventStore: EventStore, backing: Backing, options: LogTreeOptions): LogTree {
  const batch = options.batch ?? 2000;
  let running: Promise<number> | null = null;
  async function syncOnce(): Promise<number> {
    let reported = 0;
    for (;;) {
      const after = backing.lastPosition();
      const events = backing.readLeaves ? backing.readLeaves(after, batch) : await eventStore.readAll({ after, limit: batch });
      if (events.length === 0) return backing.store.size();
      backing.write(() => {
        if (backing.lastPosition() !== after) return false;
        for (const e of events) {
          backing.setPosition(e.position);
          appendLeaf(backing.store, eventLeafHash(e.hash));
        }
        return true;
      });
      const size = backing.store.size();
      if (options.onProgress && size - reported >= 50_000) {
        reported = size;
        options.onProgress(size);
      }
    }
  }
  return {
    sync() {
      // One sync at a time; a caller arriving during one waits for the next, which sees its events.
      const next: Promise<number> = (running ?? Promise.resolve(0)).catch(() => 0).then(syncOnce);
      running = next;
      void next.finally(() => {
        if (running === next) running = null;
      }).catch(() => {});
      return next;
    },
    size: () => backing.store.size(),
    root: (size) => rootAt(backing.store, size),
    inclusion: (i, size) => inclusionProof(backing.store, i, size),
    consistency: (from, to) => consistencyProof(backing.store, from, to),
    leafIndexOf: (position) => backing.leafIndexOf(position),
    leaf: (index) => backing.store.node(0, index),
  };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS merkle_leaves (
  leaf_index INTEGER PRIMARY KEY,
  position   INTEGER NOT NULL UNIQUE,
  hash       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS merkle_nodes (
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
`;

/** The tree in the log's own SQLite file (the store's `db`). Several processes may sync it: each batch is one IMMEDIATE transaction. */
export function createSqliteLogTree(db: Database.Database, eventStore: EventStore, options: LogTreeOptions = {}): LogTree {
  db.exec(SCHEMA);
  const stmt = {
    size: db.prepare<[], { n: number | null }>('SELECT max(leaf_index) + 1 AS n FROM merkle_leaves'),
    last: db.prepare<[], { p: bigint | null }>('SELECT position AS p FROM merkle_leaves ORDER BY leaf_index DESC LIMIT 1'),
    leaf: db.prepare<[number], { hash: Buffer }>('SELECT hash FROM merkle_leaves WHERE leaf_index = ?'),
    node: db.prepare<[number, number], { hash: Buffer }>('SELECT hash FROM merkle_nodes WHERE level = ? AND idx = ?'),
    putLeaf: db.prepare<[number, bigint, Buffer]>('INSERT INTO merkle_leaves (leaf_index, position, hash) VALUES (?, ?, ?)'),
    putNode: db.prepare<[number, number, Buffer]>('INSERT INTO merkle_nodes (level, idx, hash) VALUES (?, ?, ?)'),
    indexOf: db.prepare<[bigint], { i: number }>('SELECT leaf_index AS i FROM merkle_leaves WHERE position = ?'),
    // The same events readAll answers, in the same order, without parsing their payloads.
    leaves: db.prepare<[bigint, number], { position: bigint; hash: string }>('SELECT position, hash FROM events WHERE position > ? ORDER BY position LIMIT ?'),
  };
  stmt.leaves.safeIntegers(true);
  stmt.last.safeIntegers(true);
  let position = 0n;
  // Inside a write (an IMMEDIATE transaction, so no other process appends meanwhile) the size and
  // the last subtree put at each level are kept here: appending a leaf then reads nothing back,
  // since the left sibling it hashes with is always the last one put at its level.
  let writing: { size: number; last: Map<number, { index: number; hash: Hash }> } | null = null;
  const store: NodeStore = {
    size: () => writing?.size ?? stmt.size.get()?.n ?? 0,
    node(level, index) {
      const kept = writing?.last.get(level);
      if (kept && kept.index === index) return kept.hash;
      const row = level === 0 ? stmt.leaf.get(index) : stmt.node.get(level, index);
      if (!row) throw new Error(`the Merkle tree has no subtree at level ${level}, index ${index}`);
      return row.hash;
    },
    put(level, index, hash) {
      if (level === 0) stmt.putLeaf.run(index, position, hash);
      else stmt.putNode.run(level, index, hash);
      if (writing) {
        writing.last.set(level, { index, hash });
        if (level === 0) writing.size = index + 1;
      }
    },
  };
  return createLogTree(eventStore, {
    store,
    lastPosition: () => {
      const p = stmt.last.get()?.p;
      return p === null || p === undefined ? null : String(p);
    },
    write: (fn) => {
      let ok = false;
      try {
        db.transaction(() => {
          writing = { size: stmt.size.get()?.n ?? 0, last: new Map() };
          ok = fn();
        }).immediate();
      } finally {
        writing = null;
      }
      return ok;
    },
    setPosition: (p) => {
      position = BigInt(p);
    },
    leafIndexOf: (p) => stmt.indexOf.get(BigInt(p))?.i ?? null,
    readLeaves: (after, limit) => stmt.leaves.all(after === null ? 0n : BigInt(after), limit).map((r) => ({ position: String(r.position), hash: r.hash })),
  }, options);
}

/** The tree in memory, filled from readAll at the first sync (EventStoreDB: the log is remote and the tree is derived from it). */
export function createMemoryLogTree(eventStore: EventStore, options: LogTreeOptions = {}): LogTree {
  const store = memoryNodeStore();
  const indexOf = new Map<Position, number>();
  let last: Position | null = null;
  return createLogTree(eventStore, {
    store,
    lastPosition: () => last,
    write: (fn) => fn(),
    setPosition: (p) => {
      indexOf.set(p, store.size());
      last = p;
    },
    leafIndexOf: (p) => indexOf.get(p) ?? null,
  }, options);
}
