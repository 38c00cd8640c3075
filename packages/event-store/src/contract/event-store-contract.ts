// The contract every EventStore adapter passes. Written once; each adapter's spec calls it
// with a factory. Stream names are unique per test so it can run against a shared cluster.
import { randomUUID } from 'node:crypto';
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import { ConcurrencyError } from '@cm/domain';
import { comparePositions, type EventStore, type NewEvent, type StoredEvent } from '../event-store.js';
import { verifyChain } from '../hash-chain.js';

export type EventStoreFactory = () => Promise<{ store: EventStore; cleanup(): Promise<void> }>;

const ev = (type: string, data: unknown, occurredAt = '2025-11-28T10:00:00.000Z'): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { actor: 'contract', occurredAt, correlationId: randomUUID() },
});

const waitUntil = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

export function eventStoreContract(name: string, factory: EventStoreFactory): void {
  describe(`EventStore contract: ${name}`, () => {
    let store: EventStore;
    let cleanup: () => Promise<void>;
    let s: (base: string) => string;

    beforeEach(async () => {
      ({ store, cleanup } = await factory());
      const run = randomUUID().slice(0, 8);
      s = (base) => `${base}-${run}`;
    });
    afterEach(async () => {
      await cleanup();
    });

    it('appends to a new stream from revision 0, in order, with increasing positions', async () => {
      const r = await store.append(s('agreement-a'), [ev('A', { n: 1 }), ev('B', { n: 2 })], { expectedRevision: 'no_stream' });
      expect(r.revision).toBe(1);
      expect(r.duplicate).toBe(false);
      const read = await store.readStream(s('agreement-a'));
      expect(read.map((e) => [e.revision, e.type, e.data])).toEqual([[0, 'A', { n: 1 }], [1, 'B', { n: 2 }]]);
      expect(comparePositions(read[0]!.position, read[1]!.position)).toBe(-1);
      expect(read[1]!.position).toBe(r.position);
      expect(await store.streamRevision(s('agreement-a'))).toBe(1);
    });

    it('refuses a stale expected revision and appends nothing', async () => {
      await store.append(s('agreement-b'), [ev('A', {})], { expectedRevision: 'no_stream' });
      await expect(store.append(s('agreement-b'), [ev('B', {})], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(store.append(s('agreement-b'), [ev('B', {})], { expectedRevision: 5 })).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(store.append(s('agreement-none'), [ev('B', {})], { expectedRevision: 0 })).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await store.readStream(s('agreement-b'))).map((e) => e.type)).toEqual(['A']);
      expect(await store.streamRevision(s('agreement-none'))).toBe(-1);
      const ok = await store.append(s('agreement-b'), [ev('C', {})], { expectedRevision: 0 });
      expect(ok.revision).toBe(1);
      const any = await store.append(s('agreement-b'), [ev('D', {})], { expectedRevision: 'any' });
      expect(any.revision).toBe(2);
    });

    it('treats a repeated append of the same event ids as a no-op answering the first result', async () => {
      const events = [ev('A', { x: 1 }), ev('B', { x: 2 })];
      const first = await store.append(s('agreement-c'), events, { expectedRevision: 'no_stream' });
      const again = await store.append(s('agreement-c'), events, { expectedRevision: 'no_stream' });
      expect(again.duplicate).toBe(true);
      expect(again.revision).toBe(first.revision);
      expect(again.position).toBe(first.position);
      expect(await store.readStream(s('agreement-c'))).toHaveLength(2);
    });

    it('lets exactly one of several concurrent appends at the same revision win', async () => {
      await store.append(s('agreement-d'), [ev('A', {})], { expectedRevision: 'no_stream' });
      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) => store.append(s('agreement-d'), [ev('B', { i })], { expectedRevision: 0 })),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
      expect(await store.readStream(s('agreement-d'))).toHaveLength(2);
    });

    it('expected revision any means no check: concurrent appends all land and the chain verifies', async () => {
      await store.append(s('agreement-any'), [ev('A', {})], { expectedRevision: 'no_stream' });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => store.append(s('agreement-any'), [ev('B', { i })], { expectedRevision: 'any' })),
      );
      expect(results.map((r) => r.revision).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6]);
      const events = await store.readStream(s('agreement-any'));
      expect(events).toHaveLength(7);
      expect(verifyChain(events)).toMatchObject({ valid: true, events: 7 });
    });

    it('two identical appends racing: one writes, the other reports duplicate, the events are there once', async () => {
      await store.append(s('agreement-twin'), [ev('A', {})], { expectedRevision: 'no_stream' });
      const events = [ev('B', { x: 1 }), ev('C', { x: 2 })];
      const [a, b] = await Promise.all([
        store.append(s('agreement-twin'), events, { expectedRevision: 0 }),
        store.append(s('agreement-twin'), events, { expectedRevision: 0 }),
      ]);
      expect([a!.duplicate, b!.duplicate].sort()).toEqual([false, true]);
      expect(a!.revision).toBe(2);
      expect(b!.position).toBe(a!.position);
      const read = await store.readStream(s('agreement-twin'));
      expect(read.map((e) => e.type)).toEqual(['A', 'B', 'C']);
      expect(verifyChain(read).valid).toBe(true);
    });

    it('event ids are unique across the log: an id already in one stream is refused for another', async () => {
      const e = ev('A', {});
      await store.append(s('agreement-id1'), [e], { expectedRevision: 'no_stream' });
      await expect(store.append(s('agreement-id2'), [e], { expectedRevision: 'no_stream' })).rejects.toThrow(/already appended to stream/);
      expect(await store.readStream(s('agreement-id2'))).toEqual([]);
      const again = await store.append(s('agreement-id1'), [e], { expectedRevision: 'any' });
      expect(again.duplicate).toBe(true);
    });

    it('lists streams created after an earlier listing', async () => {
      await store.append(s('agreement-l1'), [ev('A', {})], { expectedRevision: 'no_stream' });
      expect(await store.listStreams()).toContain(s('agreement-l1'));
      await store.append(s('review-l2'), [ev('B', {})], { expectedRevision: 'no_stream' });
      await store.append(s('agreement-l1'), [ev('C', {})], { expectedRevision: 0 });
      const streams = await store.listStreams();
      expect(streams.filter((x) => x === s('agreement-l1'))).toHaveLength(1);
      expect(streams.indexOf(s('agreement-l1'))).toBeLessThan(streams.indexOf(s('review-l2')));
    });

    it('reads a stream between revisions and up to a recorded instant', async () => {
      await store.append(s('agreement-e'), [ev('A', {}), ev('B', {}), ev('C', {}), ev('D', {})], { expectedRevision: 'no_stream' });
      expect((await store.readStream(s('agreement-e'), { fromRevision: 1, toRevision: 2 })).map((e) => e.type)).toEqual(['B', 'C']);
      expect((await store.readStream(s('agreement-e'), { fromRevision: 1, limit: 1 })).map((e) => e.type)).toEqual(['B']);
      const all = await store.readStream(s('agreement-e'));
      const firstAt = all[0]!.metadata.recordedAt;
      await new Promise((r) => setTimeout(r, 15));
      await store.append(s('agreement-e'), [ev('E', {})], { expectedRevision: 3 });
      const upTo = await store.readStream(s('agreement-e'), { recordedUpTo: firstAt });
      expect(upTo.map((e) => e.type)).toEqual(['A', 'B', 'C', 'D']);
      expect(await store.readStream(s('agreement-e'), { recordedUpTo: '2000-01-01T00:00:00.000Z' })).toEqual([]);
      expect(await store.readStream(s('agreement-missing'))).toEqual([]);
    });

    it('stamps recordedAt with millisecond precision and keeps the caller metadata and data intact', async () => {
      const data = { text: 'Вакцина contra el cáncer ✓', nested: { list: [1, 2.5, null, true], empty: {} } };
      const e = ev('A', data, '2025-11-28T09:30:00.000Z');
      const before = Date.now();
      await store.append(s('agreement-f'), [e], { expectedRevision: 'no_stream' });
      const [read] = await store.readStream(s('agreement-f'));
      expect(read!.id).toBe(e.id);
      expect(read!.data).toEqual(data);
      expect(read!.metadata).toMatchObject(e.metadata);
      expect(read!.metadata.recordedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(Date.parse(read!.metadata.recordedAt)).toBeGreaterThanOrEqual(before - 1000);
    });

    it('chains hashes so that every stream verifies', async () => {
      await store.append(s('agreement-g'), [ev('A', { a: 1 }), ev('B', { b: 2 })], { expectedRevision: 'no_stream' });
      await store.append(s('agreement-g'), [ev('C', { c: 3 })], { expectedRevision: 1 });
      const events = await store.readStream(s('agreement-g'));
      expect(events[1]!.prevHash).toBe(events[0]!.hash);
      expect(verifyChain(events)).toMatchObject({ valid: true, events: 3, lastHash: events[2]!.hash, firstInvalidRevision: null });
      const forged: StoredEvent[] = events.map((e, i) => (i === 1 ? { ...e, data: { b: 3 } } : e));
      expect(verifyChain(forged)).toMatchObject({ valid: false, firstInvalidRevision: 1 });
    });

    it('reads the global log after a position, in one order across streams', async () => {
      const start = await store.headPosition();
      await store.append(s('agreement-h1'), [ev('A', {})], { expectedRevision: 'no_stream' });
      await store.append(s('review-h2'), [ev('B', {})], { expectedRevision: 'no_stream' });
      await store.append(s('agreement-h1'), [ev('C', {})], { expectedRevision: 0 });
      const log = (await store.readAll({ after: start, limit: 1000 })).filter((e) => e.stream.endsWith(s('').slice(1)));
      expect(log.map((e) => e.type)).toEqual(['A', 'B', 'C']);
      for (let i = 1; i < log.length; i++) expect(comparePositions(log[i - 1]!.position, log[i]!.position)).toBe(-1);
      expect(await store.headPosition()).toBe(log.at(-1)!.position);
      const tail = await store.readAll({ after: log[0]!.position, limit: 1 });
      expect(tail[0]!.position).toBe(log[1]!.position);
      const streams = await store.listStreams();
      expect(streams).toEqual(expect.arrayContaining([s('agreement-h1'), s('review-h2')]));
    });

    it('delivers past and live events to a subscriber, in order, one batch at a time', async () => {
      const start = await store.headPosition();
      await store.append(s('agreement-i'), [ev('A', {}), ev('B', {})], { expectedRevision: 'no_stream' });
      const seen: StoredEvent[] = [];
      let inFlight = 0;
      let overlapped = false;
      const sub = store.subscribe({
        after: start,
        batchSize: 2,
        async onEvents(batch) {
          inFlight++;
          if (inFlight > 1) overlapped = true;
          await new Promise((r) => setTimeout(r, 5));
          seen.push(...batch.filter((e) => e.stream === s('agreement-i')));
          inFlight--;
        },
        onError(err) {
          throw err;
        },
      });
      await store.append(s('agreement-i'), [ev('C', {})], { expectedRevision: 1 });
      await store.append(s('agreement-i'), [ev('D', {}), ev('E', {})], { expectedRevision: 2 });
      await waitUntil(() => seen.length >= 5);
      await sub.close();
      await store.append(s('agreement-i'), [ev('F', {})], { expectedRevision: 4 });
      await new Promise((r) => setTimeout(r, 150));
      expect(seen.map((e) => e.type)).toEqual(['A', 'B', 'C', 'D', 'E']);
      expect(overlapped).toBe(false);
    });

    it('keeps a subscription alive when its onError throws: later events still arrive', async () => {
      const start = await store.headPosition();
      await store.append(s('agreement-k'), [ev('A', {})], { expectedRevision: 'no_stream' });
      let failures = 0;
      const seen: string[] = [];
      const sub = store.subscribe({
        after: start,
        async onEvents(batch) {
          if (failures++ === 0) throw new Error('projection failed once');
          seen.push(...batch.filter((e) => e.stream === s('agreement-k')).map((e) => e.type));
        },
        onError(err) {
          throw err;
        },
      });
      await waitUntil(() => seen.length >= 1);
      await store.append(s('agreement-k'), [ev('B', {})], { expectedRevision: 0 });
      await waitUntil(() => seen.length >= 2);
      await sub.close();
      expect(seen).toEqual(['A', 'B']);
    });

    it('redelivers a batch whose handler failed, so a subscriber loses nothing', async () => {
      const start = await store.headPosition();
      await store.append(s('agreement-j'), [ev('A', {})], { expectedRevision: 'no_stream' });
      let failures = 0;
      const seen: string[] = [];
      const errors: unknown[] = [];
      const sub = store.subscribe({
        after: start,
        async onEvents(batch) {
          if (failures++ === 0) throw new Error('projection failed once');
          seen.push(...batch.filter((e) => e.stream === s('agreement-j')).map((e) => e.type));
        },
        onError: (err) => errors.push(err),
      });
      await waitUntil(() => seen.length >= 1);
      await sub.close();
      expect(seen).toEqual(['A']);
      expect(errors).toHaveLength(1);
    });
  });
}
