// The SQLite writer thread stopping (an uncaught error, an exit inside or after a transaction):
// the appends in flight are refused as retryable, appends are refused while it is down, it comes
// back after a backoff, and nothing is lost or written twice: the hash chain verifies across it.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewEvent } from './event-store.js';
import { verifyChain } from './hash-chain.js';
import { WriterUnavailableError, createSqliteEventStore, type SqliteEventStore, type WriterSupervision } from './sqlite-event-store.js';
import { injectWriterFault, restartGate, writerLog } from './testing/writer-faults.js';

let dir: string;
const open: SqliteEventStore[] = [];
const storeWith = (writer: WriterSupervision) => {
  const s = createSqliteEventStore({ path: join(dir, 'events.sqlite'), writer });
  open.push(s);
  return s;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cm-writer-'));
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const event = (n: number): NewEvent => ({
  id: randomUUID(), type: 'ProgressReported', data: { n }, metadata: { actor: 'clerk', occurredAt: '2026-01-05T09:00:00.000Z', correlationId: randomUUID() },
});

async function expectIntact(store: SqliteEventStore, ns: number[]): Promise<void> {
  const all = await store.readAll({ after: null, limit: 1000 });
  expect(all.map((e) => (e.data as { n: number }).n)).toEqual(ns);
  expect(verifyChain(all)).toMatchObject({ valid: true, firstInvalidRevision: null, events: ns.length });
}

describe('SQLite writer thread restart', () => {
  it('after the thread crashes, appends are refused while it is down and written again once it is back', async () => {
    const log = writerLog();
    const gate = restartGate();
    const store = storeWith({ logger: log.logger, beforeRestart: gate.beforeRestart });
    await store.append('s', [event(1)], { expectedRevision: 'no_stream' });
    await store.append('s', [event(2)], { expectedRevision: 0 });

    injectWriterFault(store, 'crash');
    await gate.reached;
    expect(store.unavailable()).toMatch(/threw: writer thread crash injected/);
    const refused = await store.append('s', [event(3)], { expectedRevision: 1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WriterUnavailableError);
    expect(refused).toMatchObject({ outcomeUnknown: false, message: expect.stringMatching(/nothing was written; retry/) });
    expect(log.lines.map((l) => l.msg)).toEqual([expect.stringMatching(/^sqlite writer thread stopped: it threw: .*; restarting$/)]);

    const back = log.restarted();
    gate.release();
    await back;
    expect(store.unavailable()).toBeNull();
    await store.append('s', [event(3)], { expectedRevision: 1 });
    expect(log.lines.at(-1)!.msg).toBe('sqlite writer thread restarted');
    await expectIntact(store, [1, 2, 3]);
  });

  it('an append in flight when the thread exits inside its transaction is refused as retryable; nothing was written, the retry writes it once', async () => {
    const log = writerLog();
    const store = storeWith({ logger: log.logger });
    await store.append('s', [event(1)], { expectedRevision: 'no_stream' });
    const e = event(2);
    const back = log.restarted();
    injectWriterFault(store, 'exit-before-commit');
    const refused = await store.append('s', [e], { expectedRevision: 0 }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(WriterUnavailableError);
    expect(refused).toMatchObject({ outcomeUnknown: true, message: expect.stringMatching(/committed whole or not at all; retry with the same event ids/) });
    await back;
    await expectIntact(store, [1]);
    const retried = await store.append('s', [e], { expectedRevision: 0 });
    expect(retried.duplicate).toBe(false);
    await expectIntact(store, [1, 2]);
  });

  it('an append in flight when the thread exits after COMMIT: its retry with the same ids is answered with what was written, not written twice', async () => {
    const log = writerLog();
    const store = storeWith({ logger: log.logger });
    await store.append('s', [event(1)], { expectedRevision: 'no_stream' });
    const e = event(2);
    const back = log.restarted();
    injectWriterFault(store, 'exit-after-commit');
    const refused = await store.append('s', [e], { expectedRevision: 0 }).catch((err: unknown) => err);
    expect(refused).toMatchObject({ outcomeUnknown: true });
    await back;
    const retried = await store.append('s', [e], { expectedRevision: 0 });
    expect(retried).toMatchObject({ duplicate: true, revision: 1, events: [{ id: e.id, revision: 1 }] });
    await store.append('s', [event(3)], { expectedRevision: 1 });
    await expectIntact(store, [1, 2, 3]);
  });

  it('backs off, doubling while restarts do not stick, and starts again from the short delay once a restarted thread commits', async () => {
    const log = writerLog();
    const store = storeWith({ logger: log.logger, initialBackoffMs: 10, maxBackoffMs: 25 });
    await store.append('s', [event(1)], { expectedRevision: 'no_stream' });
    const delays: unknown[] = [];
    for (let k = 0; k < 3; k++) {
      const back = log.restarted();
      injectWriterFault(store, 'crash');
      await back;
      delays.push(log.lines.filter((l) => l.level === 'warn').at(-1)!.fields.restartInMs);
    }
    await store.append('s', [event(2)], { expectedRevision: 0 });
    const back = log.restarted();
    injectWriterFault(store, 'crash');
    await back;
    delays.push(log.lines.filter((l) => l.level === 'warn').at(-1)!.fields.restartInMs);
    expect(delays).toEqual([10, 20, 25, 10]);
    await expectIntact(store, [1, 2]);
  });

  it('closes while the thread is down without starting another', async () => {
    const log = writerLog();
    const gate = restartGate();
    const store = storeWith({ logger: log.logger, beforeRestart: gate.beforeRestart });
    await store.append('s', [event(1)], { expectedRevision: 'no_stream' });
    injectWriterFault(store, 'crash');
    await gate.reached;
    await store.close();
    gate.release();
    await new Promise((r) => setImmediate(r));
    expect(log.lines.map((l) => l.msg)).not.toContain('sqlite writer thread restarted');
  });
});
