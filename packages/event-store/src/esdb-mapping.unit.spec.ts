import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { END, NO_STREAM, START, StreamDeletedError, WrongExpectedVersionError } from '@eventstore/db-client';
import type { JSONEventData } from '@eventstore/db-client';
import { ConcurrencyError } from '@cm/domain';
import { comparePositions, type NewEvent } from './event-store.js';
import { genesisHash, verifyChain } from './hash-chain.js';
import {
  ID_CLAIMED, ID_WRITTEN, RESUBSCRIBE_MAX_MS, RESUBSCRIBE_MIN_MS, SubscriptionCursor, anyRetryDelay, appendConflict, checkAppendResult,
  claimedData, emptyStreamHistoryError, idClaimStream, idInOtherStreamError, mapAppendError, readIdClaim, resubscribeDelay, sameIds, superviseSubscription,
  writtenData, type AttemptOutcome,
  compareEsdbPositions, decodePosition, encodePosition, fromEsdbRevision, fromResolvedEvent, headOf, isOwnEvent, positionOf,
  prepareAppend, sameEventId, splitMetadata, stampRecordedAt, toEsdbEvent, toEsdbExpectedRevision, toEsdbRevision,
  wantedRevision, type EsdbRecord, type EsdbResolvedEvent, type PreparedEvent,
} from './esdb-mapping.js';

const ev = (type: string, data: unknown): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { actor: 'unit', occurredAt: '2025-11-28T10:00:00.000Z', correlationId: randomUUID() },
});

/** What the server hands back for a written event: the JSON bytes parsed again, plus its place. */
function asServerWouldStore(p: PreparedEvent, commit: bigint): EsdbResolvedEvent {
  const written = toEsdbEvent(p) as JSONEventData;
  const record: EsdbRecord = {
    streamId: p.stream,
    id: written.id,
    revision: BigInt(p.revision),
    type: written.type,
    isJson: true,
    data: JSON.parse(JSON.stringify(written.data)) as unknown,
    metadata: JSON.parse(JSON.stringify(written.metadata)) as unknown,
    position: { commit, prepare: commit },
  };
  return { event: record };
}

const at = (iso: string) => new Date(iso);

describe('EventStoreDB mapping: events', () => {
  it('round-trips appended events through an EventStoreDB record, and the chain verifies', () => {
    const data = { text: 'Вакцина contra el cáncer ✓', nested: { list: [1, 2.5, null, true], empty: {} } };
    const events = [ev('AgreementSigned', data), ev('CommitmentAdded', { n: 2 })];
    const prepared = prepareAppend('agreement-x', events, null, at('2025-11-28T10:00:00.123Z'));
    const stored = prepared.map((p, i) => fromResolvedEvent(asServerWouldStore(p, 1000n + BigInt(i) * 200n)));

    expect(stored.map((e) => [e.id, e.stream, e.revision, e.position, e.type])).toEqual([
      [events[0]!.id, 'agreement-x', 0, '1000', 'AgreementSigned'],
      [events[1]!.id, 'agreement-x', 1, '1200', 'CommitmentAdded'],
    ]);
    expect(stored[0]!.data).toEqual(data);
    expect(stored[0]!.metadata).toEqual({ ...events[0]!.metadata, recordedAt: '2025-11-28T10:00:00.123Z', hashScheme: 2 });
    expect(stored[0]!.prevHash).toBe(genesisHash(2, 'agreement-x'));
    expect(stored[1]!.prevHash).toBe(stored[0]!.hash);
    expect(verifyChain(stored)).toMatchObject({ valid: true, events: 2, firstInvalidRevision: null });
  });

  it('writes JSON events whose metadata carries the caller metadata, recordedAt and the chain', () => {
    const [p] = prepareAppend('review-r', [ev('ReviewScheduled', { date: '2026-01-10' })], null, at('2026-01-01T00:00:00.000Z'));
    const written = toEsdbEvent(p!) as JSONEventData;
    expect(written).toMatchObject({ id: p!.id, type: 'ReviewScheduled', contentType: 'application/json', data: { date: '2026-01-10' } });
    expect(written.metadata).toEqual({ ...p!.metadata, prevHash: genesisHash(2, 'review-r'), hash: p!.hash });
    expect(Object.keys(splitMetadata(written.metadata, 'x').metadata).sort()).toEqual(['actor', 'correlationId', 'hashScheme', 'occurredAt', 'recordedAt']);
  });

  it('continues a stream from its head: next revision, previous hash, recordedAt never earlier', () => {
    const first = prepareAppend('agreement-y', [ev('A', {})], null, at('2025-11-28T10:00:05.000Z'));
    const head = headOf(fromResolvedEvent(asServerWouldStore(first[0]!, 500n)));
    // A writer whose clock lags behind the one that wrote the head.
    const next = prepareAppend('agreement-y', [ev('B', {}), ev('C', {})], head, at('2025-11-28T10:00:01.000Z'));
    expect(next.map((e) => e.revision)).toEqual([1, 2]);
    expect(next[0]!.prevHash).toBe(first[0]!.hash);
    expect(next.map((e) => e.metadata.recordedAt)).toEqual(['2025-11-28T10:00:05.000Z', '2025-11-28T10:00:05.000Z']);
    expect(stampRecordedAt(at('2025-11-28T10:00:09.000Z'), head)).toBe('2025-11-28T10:00:09.000Z');
    expect(verifyChain([...first, ...next].map((e, i) => ({ ...e, position: String(i + 1) })))).toMatchObject({ valid: true, events: 3 });
  });

  it('hashes what a read returns, so data that JSON changes still verifies after the round trip', () => {
    const [p] = prepareAppend('agreement-z', [ev('A', { when: new Date('2025-01-01T00:00:00Z'), gone: undefined })], null, at('2025-11-28T10:00:00.000Z'));
    expect(p!.data).toEqual({ when: '2025-01-01T00:00:00.000Z' });
    expect(verifyChain([fromResolvedEvent(asServerWouldStore(p!, 700n))]).valid).toBe(true);
  });

  it('refuses event ids EventStoreDB cannot store, and compares ids as GUIDs', () => {
    expect(() => prepareAppend('agreement-z', [{ ...ev('A', {}), id: 'cmd-42' }], null, new Date())).toThrow(/not a UUID/);
    const id = randomUUID();
    expect(sameEventId(id.toUpperCase(), id)).toBe(true);
    expect(sameEventId(id, randomUUID())).toBe(false);
  });

  it('refuses records the ledger did not write: binary, missing chain, missing recordedAt, no position', () => {
    const [p] = prepareAppend('agreement-w', [ev('A', {})], null, new Date());
    const good = asServerWouldStore(p!, 900n);
    const record = good.event!;
    const meta = record.metadata as Record<string, unknown>;
    expect(() => fromResolvedEvent({ event: { ...record, isJson: false } })).toThrow(/binary/);
    expect(() => fromResolvedEvent({ event: { ...record, metadata: { ...meta, hash: undefined } } })).toThrow(/hash chain/);
    expect(() => fromResolvedEvent({ event: { ...record, metadata: { ...meta, recordedAt: 5 } } })).toThrow(/recordedAt/);
    expect(() => fromResolvedEvent({ event: { ...record, metadata: undefined } })).toThrow(/no JSON metadata/);
    expect(() => fromResolvedEvent({ event: { ...record, position: undefined } })).toThrow(/22\.6/);
    expect(() => fromResolvedEvent({})).toThrow(/link/);
  });
});

describe('EventStoreDB mapping: which events are ours', () => {
  const prefixes = ['agreement-', 'review-'];
  const resolved = (streamId: string, type = 'AgreementSigned'): EsdbResolvedEvent => ({
    event: { streamId, id: randomUUID(), revision: 0n, type, isJson: true, data: {}, metadata: {}, position: { commit: 10n, prepare: 10n } },
  });

  it('keeps this service streams and skips system records, metadata streams, links and other streams', () => {
    expect(isOwnEvent(resolved('agreement-a1'), prefixes)).toBe(true);
    expect(isOwnEvent(resolved('review-spring'), prefixes)).toBe(true);
    expect(isOwnEvent(resolved('$stats-127.0.0.1:2113', '$statsCollected'), prefixes)).toBe(false);
    expect(isOwnEvent(resolved('$$agreement-a1', '$metadata'), prefixes)).toBe(false);
    expect(isOwnEvent(resolved('agreement-a1', '$>'), prefixes)).toBe(false);
    expect(isOwnEvent(resolved('settings-main', 'SettingChanged'), prefixes)).toBe(false);
    expect(isOwnEvent(resolved('agreements-list'), prefixes)).toBe(false);
    expect(isOwnEvent({}, prefixes)).toBe(false);
  });
});

describe('EventStoreDB mapping: positions', () => {
  it('encodes a $all position as its commit position and decodes it back', () => {
    expect(encodePosition({ commit: 1234n, prepare: 1234n })).toBe('1234');
    expect(decodePosition('1234')).toEqual({ commit: 1234n, prepare: 1234n });
    const big = 2n ** 62n + 17n;
    expect(decodePosition(encodePosition({ commit: big, prepare: big }))).toEqual({ commit: big, prepare: big });
  });

  it('keeps the log order: encoded strings compare as the {commit, prepare} pairs do', () => {
    const pairs = [5n, 120n, 121n, 9_999n, 10_000n, 2n ** 40n, 2n ** 62n].map((n) => ({ commit: n, prepare: n }));
    for (const a of pairs) {
      for (const b of pairs) {
        expect(comparePositions(encodePosition(a), encodePosition(b))).toBe(compareEsdbPositions(a, b));
      }
    }
    expect(compareEsdbPositions({ commit: 10n, prepare: 3n }, { commit: 10n, prepare: 4n })).toBe(-1);
    expect(compareEsdbPositions({ commit: 9n, prepare: 30n }, { commit: 10n, prepare: 4n })).toBe(-1);
    expect(comparePositions(null, encodePosition({ commit: 5n, prepare: 5n }))).toBe(-1);
  });

  it('refuses positions a decimal cannot carry or that mean "no position"', () => {
    expect(() => encodePosition({ commit: 300n, prepare: 200n })).toThrow(/explicit transaction/);
    expect(() => encodePosition({ commit: 0n, prepare: 0n })).toThrow(/not a real/);
    expect(() => encodePosition({ commit: 2n ** 64n - 1n, prepare: 2n ** 64n - 1n })).toThrow(/not a real/);
    expect(() => decodePosition('12a')).toThrow(/not a ledger position/);
    expect(() => decodePosition('-1')).toThrow(/not a ledger position/);
  });

  it('takes the record position, else the commit position a stream read may carry', () => {
    const event: EsdbRecord = { streamId: 'agreement-a', id: randomUUID(), revision: 0n, type: 'A', isJson: true, data: {}, metadata: {} };
    expect(positionOf({ event: { ...event, position: { commit: 40n, prepare: 40n } }, commitPosition: 99n })).toEqual({ commit: 40n, prepare: 40n });
    expect(positionOf({ event: { ...event, position: { commit: 0n, prepare: 0n } }, commitPosition: 99n })).toEqual({ commit: 99n, prepare: 99n });
    expect(positionOf({ event })).toBeUndefined();
  });
});

describe('EventStoreDB mapping: revisions', () => {
  it('maps expected revisions to what an exact append must find', () => {
    expect(wantedRevision('no_stream', 3)).toBe(-1);
    expect(wantedRevision('any', 3)).toBe(3);
    expect(wantedRevision(2, 3)).toBe(2);
    expect(toEsdbExpectedRevision(-1)).toBe(NO_STREAM);
    expect(toEsdbExpectedRevision(0)).toBe(0n);
    expect(toEsdbExpectedRevision(41)).toBe(41n);
    expect(() => toEsdbExpectedRevision(-2)).toThrow();
    expect(() => toEsdbExpectedRevision(1.5)).toThrow();
  });

  it('converts revisions between bigint and number both ways', () => {
    for (const n of [0, 1, 255, 2 ** 40]) expect(fromEsdbRevision(toEsdbRevision(n))).toBe(n);
    expect(fromEsdbRevision('no_stream')).toBe(-1);
    expect(() => fromEsdbRevision(2n ** 60n)).toThrow(/safe integer/);
    expect(() => fromEsdbRevision('any')).toThrow();
    expect(() => toEsdbRevision(-1)).toThrow();
  });
});

const storedAt = (commit: bigint, stream = 'agreement-s'): ReturnType<typeof fromResolvedEvent> => {
  const [p] = prepareAppend(stream, [ev('A', {})], null, at('2026-01-01T00:00:00.000Z'));
  return fromResolvedEvent(asServerWouldStore(p!, commit));
};
const pos = (n: bigint) => ({ commit: n, prepare: n });

describe('EventStoreDB mapping: refused appends (throwOnAppendFailure=false or thrown)', () => {
  it('turns a resolved {success:false} into the port conflict with the revision the stream is at', () => {
    const refused = (() => {
      try {
        checkAppendResult('agreement-a', 2, { success: false, nextExpectedRevision: 4n });
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(refused).toBeInstanceOf(ConcurrencyError);
    expect(refused).toMatchObject({ stream: 'agreement-a', expected: 2, actual: 4 });
    // The client answers -1 when the stream does not exist.
    expect(() => checkAppendResult('agreement-a', 0, { success: false, nextExpectedRevision: -1n })).toThrow(/revision -1, not 0/);
    expect(() => checkAppendResult('agreement-a', 0, { success: true, nextExpectedRevision: 0n })).not.toThrow();
  });

  it('turns a thrown WrongExpectedVersionError into the same conflict, a tombstone into a clear refusal', () => {
    const wrong = new WrongExpectedVersionError(undefined, { streamName: 'agreement-a', expected: 1n, current: 3n });
    expect(mapAppendError('agreement-a', 1, wrong)).toMatchObject({ constructor: ConcurrencyError, expected: 1, actual: 3 });
    const missing = new WrongExpectedVersionError(undefined, { streamName: 'agreement-a', expected: 1n, current: NO_STREAM });
    expect(mapAppendError('agreement-a', 1, missing)).toMatchObject({ actual: -1 });
    const deleted = mapAppendError('agreement-a', 1, StreamDeletedError.fromStreamName('agreement-a'));
    expect(String(deleted)).toMatch(/agreement-a was deleted for good \(tombstoned\)/);
    const other = new Error('deadline exceeded');
    expect(mapAppendError('agreement-a', 1, other)).toBe(other);
    expect(appendConflict('agreement-a', 0, 'no_stream')).toMatchObject({ actual: -1 });
  });
});

describe('EventStoreDB mapping: soft-deleted and truncated streams', () => {
  it('starts a stream that reads empty only when EventStoreDB hides no earlier events of it', () => {
    expect(emptyStreamHistoryError('agreement-a', undefined)).toBeNull();
    expect(emptyStreamHistoryError('agreement-a', START)).toBeNull();
    expect(emptyStreamHistoryError('agreement-a', 0)).toBeNull();
    // Soft deletion: $tb = long.MaxValue, which JSON.parse hands over as a double.
    expect(emptyStreamHistoryError('agreement-a', JSON.parse('9223372036854775807') as number)?.message).toMatch(
      /agreement-a reads empty .*soft-deleted.*restart its hash chain at revision 0.*refused/,
    );
    expect(emptyStreamHistoryError('agreement-a', END)?.message).toMatch(/soft-deleted/);
    expect(emptyStreamHistoryError('agreement-a', 7)?.message).toMatch(/truncateBefore 7/);
  });
});

describe('EventStoreDB mapping: expected revision any', () => {
  it('retries by time, not by count: attempt 50 still retries within the budget, none after it', () => {
    const delays = Array.from({ length: 50 }, (_, i) => anyRetryDelay(i + 1, 100, 10_000, () => 0.999));
    expect(delays.every((d) => d !== null && d >= 0 && d <= 250)).toBe(true);
    expect(anyRetryDelay(50, 10_000, 10_000)).toBeNull();
    // The last wait never runs past the budget.
    expect(anyRetryDelay(8, 9_990, 10_000, () => 0.999)).toBeLessThanOrEqual(10);
  });
});

describe('EventStoreDB mapping: event id claims', () => {
  it('names one claim stream per id, the same whatever the case, outside the service prefixes', () => {
    const id = randomUUID();
    expect(idClaimStream(id.toUpperCase())).toBe(`ledger-event-id-${id}`);
    expect(isOwnEvent({ event: { streamId: idClaimStream(id), id, revision: 0n, type: ID_CLAIMED, isJson: true, data: {}, metadata: {} } }, ['agreement-', 'review-'])).toBe(false);
    expect(() => idClaimStream('cmd-1')).toThrow(/not a UUID/);
  });

  it('folds a claim stream: nothing, claimed (maybe not written yet), written at a revision', () => {
    const ids = [randomUUID(), randomUUID()];
    const claimed = { type: ID_CLAIMED, data: claimedData('agreement-a', ids, 3) };
    expect(readIdClaim([])).toEqual({ state: 'none' });
    expect(readIdClaim([claimed])).toEqual({ state: 'claimed', stream: 'agreement-a', ids, fromRevision: 3 });
    expect(readIdClaim([claimed, { type: ID_WRITTEN, data: writtenData('agreement-a', 5) }])).toEqual({ state: 'written', stream: 'agreement-a', ids, revision: 5 });
    expect(() => readIdClaim([{ type: ID_WRITTEN, data: writtenData('agreement-a', 5) }])).toThrow(/malformed/);
    expect(() => readIdClaim([claimed, { type: ID_WRITTEN, data: writtenData('agreement-b', 5) }])).toThrow(/malformed/);
    expect(sameIds(ids, ids.map((id) => ({ id: id.toUpperCase() })))).toBe(true);
    expect(sameIds(ids, [{ id: ids[0]! }])).toBe(false);
    expect(idInOtherStreamError(ids[0]!, 'agreement-a', 'agreement-b').message).toBe(`event ${ids[0]} was already appended to stream agreement-a, not agreement-b`);
  });
});

describe('EventStoreDB mapping: subscription cursor and checkpoints', () => {
  it('resumes from a checkpoint beyond the last event once everything before it is handled', () => {
    const c = new SubscriptionCursor('100');
    expect(c.resumeFrom).toEqual(pos(100n));
    const e1 = storedAt(200n);
    const e2 = storedAt(300n);
    expect(c.received(e1, pos(200n))).toBe(true);
    expect(c.received(e2, pos(300n))).toBe(true);
    // The filter skipped other streams up to 5000; e1 and e2 still wait for the handler.
    c.checkpoint(pos(5000n));
    expect(c.resumeFrom).toEqual(pos(100n));
    const batch = c.nextBatch(1);
    expect(batch).toEqual([e1]);
    c.handled(batch);
    expect(c.after).toBe('200');
    expect(c.resumeFrom).toEqual(pos(200n));
    c.handled(c.nextBatch(10));
    expect(c.after).toBe('300');
    expect(c.resumeFrom).toEqual(pos(5000n));
    // With nothing pending a checkpoint applies at once.
    c.checkpoint(pos(9000n));
    expect(c.resumeFrom).toEqual(pos(9000n));
    expect(c.pending).toBe(0);
  });

  it('forgets what a failed attempt received but did not handle, and skips what it already passed', () => {
    const c = new SubscriptionCursor(null);
    expect(c.resumeFrom).toBeNull();
    const e1 = storedAt(200n);
    c.received(e1, pos(200n));
    c.checkpoint(pos(400n));
    c.reset();
    expect(c.pending).toBe(0);
    expect(c.resumeFrom).toBeNull();
    expect(c.nextBatch(10)).toEqual([]);
    c.received(e1, pos(200n));
    c.handled(c.nextBatch(10));
    expect(c.received(e1, pos(200n))).toBe(false);
    expect(() => c.handled([e1])).toThrow(/more events than were received/);
    expect(() => new SubscriptionCursor('12a')).toThrow(/not a ledger position/);
  });

  it('backs off while nothing gets through and starts over once something did', () => {
    const waits: number[] = [];
    let d: number | null = null;
    for (let i = 0; i < 8; i++) waits.push((d = resubscribeDelay(d, false)));
    expect(waits).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(resubscribeDelay(RESUBSCRIBE_MAX_MS, true)).toBe(RESUBSCRIBE_MIN_MS);
  });
});

describe('EventStoreDB subscription supervision', () => {
  it('never dies: a bad position, a failing attempt and an onError that throws are all survived', async () => {
    let active = true;
    let after: string | null = null;
    const calls: string[] = [];
    const logged: unknown[] = [];
    const slept: number[] = [];
    const outcomes: (() => Promise<AttemptOutcome>)[] = [
      // A subscriber position that does not decode fails its attempt, not the loop.
      async () => {
        new SubscriptionCursor('not-a-position');
        return { failed: false };
      },
      async () => ({ failed: true, err: new Error('connection reset') }),
      async () => {
        after = '42';
        return { failed: true, err: new Error('handler failed') };
      },
      async () => {
        active = false;
        return { failed: false };
      },
    ];
    await superviseSubscription({
      isActive: () => active,
      attempt: () => {
        calls.push(`attempt ${calls.length + 1}`);
        return outcomes.shift()!();
      },
      delivered: () => after,
      onError: (err) => {
        throw new Error(`onError rethrew: ${String(err)}`);
      },
      logError: (_m, err) => logged.push(err),
      sleep: async (ms) => {
        slept.push(ms);
      },
    });
    expect(calls).toHaveLength(4);
    expect(logged.map(String)).toEqual([
      expect.stringMatching(/not a ledger position/),
      expect.stringMatching(/connection reset/),
      expect.stringMatching(/handler failed/),
    ]);
    expect(slept).toEqual([100, 200, 100]);
  });
});
