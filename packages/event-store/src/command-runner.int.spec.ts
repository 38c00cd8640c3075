// The command runner against a real SQLite log: commands that queue on one stream are decided in
// order and appended together, yet each is answered as if it had run alone.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConcurrencyError, ConflictError, type Decider } from '@cm/domain';
import { runCommand, type CommandContext } from './command-runner.js';
import type { EventStore } from './event-store.js';
import { verifyChain } from './hash-chain.js';
import { createSqliteEventStore, type SqliteEventStore } from './sqlite-event-store.js';

// A tally: `Add` appends one event, `Take` refuses what was already taken, `Nothing` appends none.
type TallyState = { total: number; taken: string[] };
type TallyCommand = { type: 'Add'; n: number } | { type: 'Take'; item: string } | { type: 'Nothing' };
type TallyEvent = { type: 'Added'; data: { n: number } } | { type: 'Taken'; data: { item: string } };
const tally: Decider<TallyState, TallyCommand, TallyEvent> = {
  initial: () => ({ total: 0, taken: [] }),
  evolve: (s, e) => (e.type === 'Added' ? { ...s, total: s.total + e.data.n } : { ...s, taken: [...s.taken, e.data.item] }),
  decide: (c, s) => {
    if (c.type === 'Add') return [{ type: 'Added', data: { n: c.n } }];
    if (c.type === 'Nothing') return [];
    if (s.taken.includes(c.item)) throw new ConflictError(`${c.item} is taken`, 'taken');
    return [{ type: 'Taken', data: { item: c.item } }];
  },
};

const ctx = (correlationId: string, extra: Partial<CommandContext> = {}): CommandContext => ({
  actor: 'tester', occurredAt: '2026-01-01T00:00:00.000Z', correlationId, idempotencyScope: null, ifMatch: null, ...extra,
});

describe('runCommand on one stream under concurrency', () => {
  let dir: string;
  let store: SqliteEventStore;
  let appends: number;
  let counted: EventStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cm-runner-'));
    store = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
    appends = 0;
    counted = { ...store, append: (...args) => (appends++, store.append(...args)) };
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers each of many concurrent commands with its own event, in fewer appends than commands', async () => {
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => runCommand(counted, 's-1', tally, { type: 'Add', n: i }, ctx(`c-${i}`))));
    expect(results.map((r) => r.revision).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const log = await store.readStream('s-1');
    for (const [i, r] of results.entries()) {
      expect(r.appended).toHaveLength(1);
      expect(log[r.revision]!.metadata.correlationId).toBe(`c-${i}`);
      expect(log[r.revision]!.position).toBe(r.position);
      expect((r.state as TallyState).total - (r.before as TallyState).total).toBe(i);
    }
    expect((results.find((r) => r.revision === 39)!.state as TallyState).total).toBe((39 * 40) / 2);
    expect(verifyChain(log).valid).toBe(true);
    expect(appends).toBeLessThan(40);
  });

  it('refuses only the command the state before it refuses; the rest of its batch lands', async () => {
    await runCommand(store, 's-2', tally, { type: 'Add', n: 0 }, ctx('first'));
    const outcomes = await Promise.allSettled([
      runCommand(store, 's-2', tally, { type: 'Take', item: 'a' }, ctx('take-a')),
      runCommand(store, 's-2', tally, { type: 'Take', item: 'b' }, ctx('take-b')),
      runCommand(store, 's-2', tally, { type: 'Take', item: 'a' }, ctx('take-a-again')),
      runCommand(store, 's-2', tally, { type: 'Nothing' }, ctx('nothing')),
      runCommand(store, 's-2', tally, { type: 'Add', n: 5 }, ctx('add-5')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const log = await store.readStream('s-2');
    expect(log.map((e) => e.metadata.correlationId)).toEqual(['first', 'take-a', 'take-b', 'add-5']);
    const nothing = (outcomes[3] as PromiseFulfilledResult<Awaited<ReturnType<typeof runCommand>>>).value;
    expect(nothing).toMatchObject({ revision: 2, position: log[2]!.position, appended: [] });
  });

  it('gives If-Match to the first of two commands naming the same revision and 412 to the second', async () => {
    await runCommand(store, 's-3', tally, { type: 'Add', n: 1 }, ctx('first'));
    const outcomes = await Promise.allSettled([
      runCommand(store, 's-3', tally, { type: 'Add', n: 2 }, ctx('busy')),
      runCommand(store, 's-3', tally, { type: 'Add', n: 3 }, ctx('match-1', { ifMatch: 1 })),
      runCommand(store, 's-3', tally, { type: 'Add', n: 4 }, ctx('match-1-too', { ifMatch: 1 })),
      runCommand(store, 's-3', tally, { type: 'Add', n: 5 }, ctx('match-2', { ifMatch: 2 })),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[2] as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    expect((await store.readStream('s-3')).map((e) => e.metadata.correlationId)).toEqual(['first', 'busy', 'match-1', 'match-2']);
  });

  it('appends a repeated request with the same Idempotency-Key once, even amid other commands', async () => {
    await runCommand(store, 's-4', tally, { type: 'Add', n: 1 }, ctx('first'));
    const keyed = ctx('keyed', { idempotencyScope: 'tester|key-1' });
    const results = await Promise.all([
      runCommand(store, 's-4', tally, { type: 'Add', n: 2 }, ctx('other-1')),
      runCommand(store, 's-4', tally, { type: 'Add', n: 7 }, keyed),
      runCommand(store, 's-4', tally, { type: 'Add', n: 3 }, ctx('other-2')),
      runCommand(store, 's-4', tally, { type: 'Add', n: 7 }, keyed),
      runCommand(store, 's-4', tally, { type: 'Add', n: 4 }, ctx('other-3')),
    ]);
    const log = await store.readStream('s-4');
    expect(log.filter((e) => e.metadata.correlationId === 'keyed')).toHaveLength(1);
    expect(results[1]!.revision).toBe(results[3]!.revision);
    expect(log).toHaveLength(5);
  });

  it('decides a batch again when another process wrote to the stream first', async () => {
    const other = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
    try {
      await runCommand(store, 's-5', tally, { type: 'Add', n: 1 }, ctx('first'));
      await runCommand(other, 's-5', tally, { type: 'Add', n: 100 }, ctx('elsewhere'));
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => runCommand(store, 's-5', tally, { type: 'Add', n: 1 }, ctx(`c-${i}`))));
      const log = await store.readStream('s-5');
      expect(log).toHaveLength(12);
      expect(Math.max(...results.map((r) => (r.state as TallyState).total))).toBe(111);
      expect(verifyChain(log).valid).toBe(true);
    } finally {
      await other.close();
    }
  });
});
