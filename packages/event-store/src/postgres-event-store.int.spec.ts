// The PostgreSQL adapter against a real server: the shared contract, then what only a server
// with several connections can show (concurrent writers, LISTEN/NOTIFY, migrations). Every run
// has its own database (testing/postgres.ts), dropped at the end.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventStoreContract } from './contract/event-store-contract.js';
import type { NewEvent, StoredEvent } from './event-store.js';
import { verifyChain } from './hash-chain.js';
import { LATEST_SCHEMA_VERSION, migratePostgres, openPostgresEventStore } from './postgres-event-store.js';
import { createSqliteEventStore } from './sqlite-event-store.js';
import { PG_SKIP, freshPostgresDatabase, type FreshDatabase } from './testing/postgres.js';

const ev = (type: string, data: unknown = {}): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { actor: 'pg-spec', occurredAt: '2025-11-28T10:00:00.000Z', correlationId: randomUUID() },
});

const waitUntil = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.skipIf(PG_SKIP)('PostgreSQL adapter', () => {
  let db: FreshDatabase;
  const extra: FreshDatabase[] = [];
  const fresh = async () => {
    const d = await freshPostgresDatabase();
    extra.push(d);
    return d;
  };
  beforeAll(async () => {
    db = await freshPostgresDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    for (const d of extra) await d.drop();
  });

  eventStoreContract('PostgreSQL', async () => {
    const store = await openPostgresEventStore({ connectionString: db.url, pollIntervalMs: 50, logInfo: () => {} });
    return { store, cleanup: () => store.close() };
  });

  describe('PostgreSQL specifics', () => {
    it('concurrent writers on several connections: a subscriber sees every event exactly once, in order, with no gap', async () => {
      const d = await fresh();
      const writers = await Promise.all(Array.from({ length: 4 }, () => openPostgresEventStore({ connectionString: d.url, maxConnections: 4, logInfo: () => {} })));
      const reader = await openPostgresEventStore({ connectionString: d.url, pollIntervalMs: 5, logInfo: () => {} });
      const seen: StoredEvent[] = [];
      const sub = reader.subscribe({ after: null, batchSize: 7, onEvents: async (b) => void seen.push(...b), onError: (err) => { throw err; } });
      // A second reader that follows the log by readAll alone, as fast as it can, while writes go on.
      const polled: StoredEvent[] = [];
      let writing = true;
      const poller = (async () => {
        while (writing || polled.length < 4 * 4 * 10 * 2) {
          const b = await reader.readAll({ after: polled.at(-1)?.position ?? null, limit: 50 });
          polled.push(...b);
          if (!writing && b.length === 0) break;
        }
      })();
      const appends: Promise<unknown>[] = [];
      writers.forEach((w, wi) => {
        for (let c = 0; c < 4; c++) {
          const stream = `agreement-${wi}-${c}`;
          appends.push((async () => {
            for (let i = 0; i < 10; i++) await w.append(stream, [ev('A', { i }), ev('B', { i })], { expectedRevision: i === 0 ? 'no_stream' : 2 * i - 1 });
          })());
        }
      });
      await Promise.all(appends);
      writing = false;
      await poller;
      const total = 4 * 4 * 10 * 2;
      await waitUntil(() => seen.length >= total);
      await sub.close();
      for (const list of [seen, polled]) {
        expect(list).toHaveLength(total);
        expect(new Set(list.map((e) => e.id)).size).toBe(total);
        // Positions are contiguous: a reader never saw N+1 before N.
        list.forEach((e, i) => expect(e.position).toBe(String(i + 1)));
      }
      for (const stream of await reader.listStreams()) expect(verifyChain(await reader.readStream(stream), await reader.streamHead!(stream))).toMatchObject({ valid: true, events: 20 });
      for (const w of writers) await w.close();
      await reader.close();
    });

    it('appends from two connections racing at the same revision: exactly one wins, the other gets a concurrency error', async () => {
      const d = await fresh();
      const [a, b] = await Promise.all([openPostgresEventStore({ connectionString: d.url }), openPostgresEventStore({ connectionString: d.url })]);
      await a.append('agreement-race', [ev('A')], { expectedRevision: 'no_stream' });
      const results = await Promise.allSettled([a, b, a, b].map((s) => s.append('agreement-race', [ev('B')], { expectedRevision: 0 })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.name)).toEqual(['ConcurrencyError', 'ConcurrencyError', 'ConcurrencyError']);
      await a.close();
      await b.close();
    });

    it('a subscriber on another connection wakes on NOTIFY, not on its poll', async () => {
      const d = await fresh();
      const reader = await openPostgresEventStore({ connectionString: d.url, pollIntervalMs: 60_000, logInfo: () => {} });
      const writer = await openPostgresEventStore({ connectionString: d.url });
      const seen: StoredEvent[] = [];
      const sub = reader.subscribe({ after: null, onEvents: async (b) => void seen.push(...b), onError: () => {} });
      await waitUntil(() => reader.listening());
      const started = Date.now();
      await writer.append('agreement-notify', [ev('A')], { expectedRevision: 'no_stream' });
      await waitUntil(() => seen.length === 1, 2000);
      expect(Date.now() - started).toBeLessThan(2000);
      await sub.close();
      await reader.close();
      await writer.close();
    });

    it('when the LISTEN connection is killed, subscribers poll on and it reconnects by itself, saying so', async () => {
      const d = await fresh();
      const lines: string[] = [];
      const reader = await openPostgresEventStore({ connectionString: d.url, pollIntervalMs: 50, logInfo: (l) => lines.push(l) });
      const writer = await openPostgresEventStore({ connectionString: d.url });
      const seen: StoredEvent[] = [];
      const sub = reader.subscribe({ after: null, onEvents: async (b) => void seen.push(...b), onError: () => {} });
      await waitUntil(() => reader.listening());
      await writer.pool.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`, [d.name]);
      await waitUntil(() => !reader.listening());
      await writer.append('agreement-poll', [ev('A')], { expectedRevision: 'no_stream' });
      await waitUntil(() => seen.length === 1);
      await waitUntil(() => reader.listening(), 10_000);
      expect(lines.join('\n')).toMatch(/LISTEN connection is down[\s\S]*LISTEN connection is back/);
      await writer.append('agreement-poll', [ev('B')], { expectedRevision: 0 });
      await waitUntil(() => seen.length === 2);
      await sub.close();
      await reader.close();
      await writer.close();
    });

    it('recordedAt never goes backwards, even when the clock does', async () => {
      const d = await fresh();
      let clock = new Date('2030-01-01T00:00:10.000Z');
      const store = await openPostgresEventStore({ connectionString: d.url, now: () => clock });
      await store.append('agreement-clock', [ev('A')], { expectedRevision: 'no_stream' });
      clock = new Date('2030-01-01T00:00:05.000Z');
      const r = await store.append('review-clock', [ev('B')], { expectedRevision: 'no_stream' });
      expect(r.events[0]!.metadata.recordedAt).toBe('2030-01-01T00:00:10.000Z');
      expect(await store.lastRecordedAt()).toBe('2030-01-01T00:00:10.000Z');
      await store.close();
      // Another process (another store) continues from the log's last instant too.
      const other = await openPostgresEventStore({ connectionString: d.url, now: () => new Date('2030-01-01T00:00:01.000Z') });
      const r2 = await other.append('agreement-clock', [ev('C')], { expectedRevision: 0 });
      expect(r2.events[0]!.metadata.recordedAt).toBe('2030-01-01T00:00:10.000Z');
      await other.close();
    });

    it('commits with synchronous_commit=on even when the database default is off', async () => {
      const d = await fresh();
      const admin = new pg.Client({ connectionString: d.url });
      await admin.connect();
      await admin.query(`ALTER DATABASE ${d.name} SET synchronous_commit = off`);
      await admin.end();
      const store = await openPostgresEventStore({ connectionString: d.url });
      const { rows } = await store.pool.query<{ synchronous_commit: string }>('SHOW synchronous_commit');
      expect(rows[0]!.synchronous_commit).toBe('on');
      await store.close();
    });

    it('runs its migrations once, records the version, and refuses a database whose schema is newer', async () => {
      const d = await fresh();
      expect(await migratePostgres(d.url)).toEqual({ from: 0, to: LATEST_SCHEMA_VERSION, applied: [1, 2] });
      expect(await migratePostgres(d.url)).toEqual({ from: LATEST_SCHEMA_VERSION, to: LATEST_SCHEMA_VERSION, applied: [] });
      const store = await openPostgresEventStore({ connectionString: d.url, migrate: false });
      await store.close();
      const admin = new pg.Client({ connectionString: d.url });
      await admin.connect();
      await admin.query(`INSERT INTO schema_version (version, description) VALUES ($1, 'from the future')`, [LATEST_SCHEMA_VERSION + 1]);
      await admin.end();
      await expect(openPostgresEventStore({ connectionString: d.url })).rejects.toThrow(
        new RegExp(`schema is at version ${LATEST_SCHEMA_VERSION + 1}, newer than version ${LATEST_SCHEMA_VERSION}`),
      );
      await expect(migratePostgres(d.url)).rejects.toThrow(/newer than version/);
    });

    it('imports a SQLite log into an empty PostgreSQL log, keeping positions and hashes, and refuses a non-empty one', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cm-pg-import-'));
      const sqlite = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
      await sqlite.append('agreement-x', [ev('A'), ev('B')], { expectedRevision: 'no_stream' });
      await sqlite.append('review-y', [ev('C')], { expectedRevision: 'no_stream' });
      await sqlite.append('agreement-x', [ev('D')], { expectedRevision: 1 });
      const original = await sqlite.readAll({ after: null, limit: 100 });
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
      const d = await fresh();
      const store = await openPostgresEventStore({ connectionString: d.url });
      expect(await store.importEvents(original)).toEqual({ events: 4, streams: 2 });
      expect(await store.readAll({ after: null, limit: 100 })).toEqual(original);
      expect(await store.listStreams()).toEqual(['agreement-x', 'review-y']);
      expect(verifyChain(await store.readStream('agreement-x'), await store.streamHead!('agreement-x')).valid).toBe(true);
      const next = await store.append('agreement-x', [ev('E')], { expectedRevision: 2 });
      expect(next.position).toBe(String(BigInt(original.at(-1)!.position) + 1n));
      await expect(store.importEvents(original)).rejects.toThrow(/already holds events/);
      await store.close();
    });

    it('refuses an import whose chain is broken, and writes nothing', async () => {
      const d = await fresh();
      const store = await openPostgresEventStore({ connectionString: d.url });
      const src = await fresh();
      const a = await openPostgresEventStore({ connectionString: src.url });
      await a.append('agreement-z', [ev('A', { n: 1 }), ev('B', { n: 2 })], { expectedRevision: 'no_stream' });
      const events = await a.readAll({ after: null, limit: 10 });
      await a.close();
      await expect(store.importEvents(events.map((e, i) => (i === 1 ? { ...e, data: { n: 3 } } : e)))).rejects.toThrow(/import refused at agreement-z revision 1/);
      expect(await store.headPosition()).toBeNull();
      await store.close();
    });
  });
});


