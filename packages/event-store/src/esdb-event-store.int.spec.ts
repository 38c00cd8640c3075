// The EventStoreDB adapter against a real server. No server runs on every machine, so the
// contract runs only where ESDB_URL points at one; elsewhere vitest reports it as skipped.
// The pure mapping behind each case below is also unit-tested everywhere (esdb-mapping.unit.spec.ts).
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FORWARDS, NO_STREAM, START, jsonEvent } from '@eventstore/db-client';
import { ConcurrencyError } from '@cm/domain';
import { eventStoreContract } from './contract/event-store-contract.js';
import { createEsdbEventStore, type EsdbEventStore } from './esdb-event-store.js';
import { ID_CLAIMED, ID_WRITTEN, idClaimStream } from './esdb-mapping.js';
import type { NewEvent, StoredEvent } from './event-store.js';

const url = process.env.ESDB_URL;
if (!url) console.warn('EventStoreDB contract skipped: set ESDB_URL=esdb://localhost:2113?tls=false to run it');

const ev = (type: string, data: unknown = {}): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { actor: 'esdb-spec', occurredAt: '2025-11-28T10:00:00.000Z', correlationId: randomUUID() },
});

const waitUntil = async (cond: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.skipIf(!url)('EventStoreDB adapter', () => {
  eventStoreContract('EventStoreDB', async () => {
    if (!url) throw new Error('ESDB_URL is not set');
    // Stream names are unique per test, so runs share one server without clearing it.
    const store = createEsdbEventStore({ connectionString: url });
    return { store, cleanup: () => store.close() };
  });

  describe('EventStoreDB specifics', () => {
    let store: EsdbEventStore;
    let s: (base: string) => string;
    const logged: unknown[] = [];
    beforeEach(() => {
      store = createEsdbEventStore({ connectionString: url!, logError: (_m, err) => logged.push(err) });
      const run = randomUUID().slice(0, 8);
      s = (base) => `${base}-${run}`;
      logged.length = 0;
    });
    afterEach(() => store.close());

    it('throwOnAppendFailure=false in the connection string: a stale revision is still a concurrency error', async () => {
      const lax = createEsdbEventStore({ connectionString: `${url}${url!.includes('?') ? '&' : '?'}throwOnAppendFailure=false` });
      try {
        await lax.append(s('agreement-lax'), [ev('A')], { expectedRevision: 'no_stream' });
        await expect(lax.append(s('agreement-lax'), [ev('B')], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(ConcurrencyError);
        const race = await Promise.allSettled(Array.from({ length: 4 }, () => lax.append(s('agreement-lax'), [ev('C')], { expectedRevision: 0 })));
        expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of race) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(ConcurrencyError);
        expect(await lax.streamRevision(s('agreement-lax'))).toBe(1);
      } finally {
        await lax.close();
      }
    });

    it('refuses to restart a soft-deleted stream at revision 0 with the genesis hash', async () => {
      await store.append(s('agreement-soft'), [ev('A'), ev('B')], { expectedRevision: 'no_stream' });
      await store.client.deleteStream(s('agreement-soft'));
      expect(await store.readStream(s('agreement-soft'))).toEqual([]);
      await expect(store.append(s('agreement-soft'), [ev('C')], { expectedRevision: 'no_stream' })).rejects.toThrow(/soft-deleted.*refused/);
      await expect(store.append(s('agreement-soft'), [ev('C')], { expectedRevision: 'any' })).rejects.toThrow(/soft-deleted/);
    });

    it('refuses a stream truncated to nothing, and a tombstoned one, with a clear error', async () => {
      await store.append(s('agreement-trunc'), [ev('A'), ev('B'), ev('C')], { expectedRevision: 'no_stream' });
      await store.client.setStreamMetadata(s('agreement-trunc'), { truncateBefore: 3 });
      await expect(store.append(s('agreement-trunc'), [ev('D')], { expectedRevision: 'any' })).rejects.toThrow(/truncateBefore 3/);
      await store.append(s('agreement-tomb'), [ev('A')], { expectedRevision: 'no_stream' });
      await store.client.tombstoneStream(s('agreement-tomb'));
      await expect(store.append(s('agreement-tomb'), [ev('B')], { expectedRevision: 'any' })).rejects.toThrow(/tombstoned/);
    });

    it('claims each append in ledger-event-id-<id>, which readAll and subscribers never see', async () => {
      const start = await store.headPosition();
      const e = ev('A');
      const r = await store.append(s('agreement-claim'), [e], { expectedRevision: 'no_stream' });
      const claim: { type: string; data: unknown }[] = [];
      for await (const x of store.client.readStream(idClaimStream(e.id), { fromRevision: START, direction: FORWARDS, maxCount: 10 })) {
        claim.push({ type: x.event!.type, data: x.event!.data });
      }
      expect(claim).toEqual([
        { type: ID_CLAIMED, data: { stream: s('agreement-claim'), ids: [e.id], fromRevision: 0 } },
        { type: ID_WRITTEN, data: { stream: s('agreement-claim'), revision: 0 } },
      ]);
      const log = await store.readAll({ after: start, limit: 1000 });
      expect(log.some((x) => x.stream.startsWith('ledger-event-id-'))).toBe(false);
      expect(log.map((x) => x.position)).toContain(r.position);
    });

    it('takes over a claim left by an append that stopped before writing its events', async () => {
      const e = ev('A');
      await store.client.appendToStream(
        idClaimStream(e.id),
        [jsonEvent({ id: randomUUID(), type: ID_CLAIMED, data: { stream: s('agreement-orphan'), ids: [e.id], fromRevision: 0 } })],
        { expectedRevision: NO_STREAM },
      );
      const r = await store.append(s('agreement-orphan'), [e], { expectedRevision: 'no_stream' });
      expect(r.duplicate).toBe(false);
      expect((await store.readStream(s('agreement-orphan'))).map((x) => x.id)).toEqual([e.id]);
      expect((await store.append(s('agreement-orphan'), [e], { expectedRevision: 'no_stream' })).duplicate).toBe(true);
    });

    it('a subscriber whose onError throws keeps getting events, and the error is logged', async () => {
      const start = await store.headPosition();
      await store.append(s('agreement-sub'), [ev('A')], { expectedRevision: 'no_stream' });
      const seen: StoredEvent[] = [];
      let failures = 0;
      const sub = store.subscribe({
        after: start,
        async onEvents(batch) {
          if (failures++ === 0) throw new Error('projection failed once');
          seen.push(...batch.filter((x) => x.stream === s('agreement-sub')));
        },
        onError(err) {
          throw err;
        },
      });
      await waitUntil(() => seen.length >= 1);
      await store.append(s('agreement-sub'), [ev('B')], { expectedRevision: 0 });
      await waitUntil(() => seen.length >= 2);
      await sub.close();
      expect(seen.map((x) => x.type)).toEqual(['A', 'B']);
      expect(logged.map(String)).toEqual([expect.stringMatching(/projection failed once/)]);
    });

    it('a subscriber given a position that is not one is told so, and carries on when closed', async () => {
      const errors: unknown[] = [];
      const sub = store.subscribe({ after: 'not-a-position', onEvents: async () => {}, onError: (err) => errors.push(err) });
      await waitUntil(() => errors.length >= 1);
      await sub.close();
      expect(String(errors[0])).toMatch(/not a ledger position/);
    });
  });
});
