// Export and import on real SQLite files: an export is a consistent cut of a log that keeps
// moving; an import restores an archive into an empty log exactly (ids, positions, recordedAt,
// hashes), refuses a non-empty log or a broken chain without writing anything, and the restored
// log takes new appends as if it had never moved.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBundleEvents, verifyBundle } from './bundle.js';
import { exportArchive, exportStream } from './bundle-export.js';
import type { NewEvent, StoredEvent } from './event-store.js';
import { verifyChain } from './hash-chain.js';
import { createSqliteEventStore, type SqliteEventStore } from './sqlite-event-store.js';

let dir: string;
const open: SqliteEventStore[] = [];
const storeAt = (name: string, clock?: () => Date) => {
  const s = createSqliteEventStore({ path: join(dir, name), ...(clock ? { now: clock } : {}) });
  open.push(s);
  return s;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cm-import-'));
});
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
  rmSync(dir, { recursive: true, force: true });
});

const event = (type: string, data: unknown, occurredAt = '2026-01-05T09:00:00.000Z'): NewEvent => ({
  id: randomUUID(), type, data, metadata: { actor: 'clerk', occurredAt, correlationId: randomUUID(), causationId: 'cmd-1' },
});

/** Three streams written in interleaved commands, as a working service would. */
async function writeLog(store: SqliteEventStore): Promise<void> {
  for (const id of ['a', 'b', 'c']) await store.append(`agreement-${id}`, [event('AgreementSigned', { agreementId: id, title: `Agreement ${id}` })], { expectedRevision: 'no_stream' });
  for (let k = 1; k <= 4; k++) {
    for (const id of ['a', 'b', 'c']) {
      if (id === 'c' && k > 2) continue;
      await store.append(`agreement-${id}`, [event('ProgressReported', { commitmentId: 'c-1', percent: k * 20, note: `step ${k} — año` })], { expectedRevision: 'any' });
    }
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const everything = (s: SqliteEventStore) => s.readAll({ after: null, limit: 1_000_000 });

describe('importEvents', () => {
  it('restores an archive exactly: same events, positions, times and hashes, same streams', async () => {
    const source = storeAt('source.sqlite');
    await writeLog(source);
    const archive = await exportArchive(source, '2026-02-01T00:00:00.000Z');
    const lines = (await collect(archive.lines)).map((l) => l.slice(0, -1));
    expect((await verifyBundle(lines)).valid).toBe(true);

    const target = storeAt('target.sqlite');
    const summary = await target.importEvents(readBundleEvents(lines));
    expect(summary).toEqual({ events: 13, streams: 3 });
    expect(await everything(target)).toEqual(await everything(source));
    expect(await target.listStreams()).toEqual(await source.listStreams());
    expect(await target.headPosition()).toBe(await source.headPosition());
    for (const s of await source.listStreams()) {
      expect(await target.streamRevision(s)).toBe(await source.streamRevision(s));
      expect(verifyChain(await target.readStream(s))).toEqual(verifyChain(await source.readStream(s)));
    }
  });

  it('takes appends afterwards that continue each chain and the log, never behind the imported times', async () => {
    const source = storeAt('source.sqlite');
    await writeLog(source);
    const last = (await everything(source)).at(-1)!;
    // The target's clock is behind the imported log: recordedAt must still not go backwards.
    const target = storeAt('target.sqlite', () => new Date('2020-01-01T00:00:00.000Z'));
    await target.importEvents(await everything(source));
    const r = await target.append('agreement-a', [event('ProgressReported', { commitmentId: 'c-1', percent: 100 })], { expectedRevision: 4 });
    expect(BigInt(r.position)).toBeGreaterThan(BigInt(last.position));
    expect(r.events[0]!.metadata.recordedAt >= last.metadata.recordedAt).toBe(true);
    expect(verifyChain(await target.readStream('agreement-a'))).toMatchObject({ valid: true, events: 6 });
  });

  it('refuses a log that holds any event, writing nothing', async () => {
    const source = storeAt('source.sqlite');
    await writeLog(source);
    const target = storeAt('target.sqlite');
    await target.append('agreement-z', [event('AgreementSigned', { agreementId: 'z' })], { expectedRevision: 'no_stream' });
    await expect(target.importEvents(await everything(source))).rejects.toMatchObject({ code: 'log_not_empty' });
    expect(await everything(target)).toHaveLength(1);
  });

  it('refuses a chain that does not link, and rolls back what it had inserted', async () => {
    const source = storeAt('source.sqlite');
    await writeLog(source);
    const events = await everything(source);
    const bad = events.map((e, i): StoredEvent => (i === 9 ? { ...e, data: { ...(e.data as object), percent: 99 } } : e));
    const target = storeAt('target.sqlite');
    await expect(target.importEvents(bad)).rejects.toThrow(new RegExp(`${bad[9]!.stream} revision ${bad[9]!.revision}.*hash does not match`));
    expect(await target.headPosition()).toBeNull();
    expect(await target.listStreams()).toEqual([]);
    // Events out of global order are refused too (the log's order is the positions').
    const swapped = [...events];
    [swapped[1], swapped[2]] = [swapped[2]!, swapped[1]!];
    await expect(target.importEvents(swapped)).rejects.toThrow(/position .* is not after/);
    // ...and the log is still empty, so a correct import then succeeds.
    expect((await target.importEvents(events)).events).toBe(events.length);
  });

  it('refuses appends on the same store while the import runs, and takes them after', async () => {
    const source = storeAt('source.sqlite');
    await writeLog(source);
    const events = await everything(source);
    const target = storeAt('target.sqlite');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow() {
      yield events[0]!;
      await gate;
      yield* events.slice(1);
    }
    const running = target.importEvents(slow());
    await new Promise((r) => setTimeout(r, 10));
    await expect(target.append('agreement-q', [event('AgreementSigned', {})], { expectedRevision: 'no_stream' })).rejects.toMatchObject({ code: 'import_running' });
    release();
    await running;
    await expect(target.append('agreement-q', [event('AgreementSigned', {})], { expectedRevision: 'no_stream' })).resolves.toMatchObject({ revision: 0 });
  });
});

describe('exports', () => {
  it('cut the log where the header was taken: appends made while the lines stream are left out', async () => {
    const store = storeAt('events.sqlite');
    await writeLog(store);
    const archive = await exportArchive(store, '2026-02-01T00:00:00.000Z');
    const stream = (await exportStream(store, 'agreement-a', '2026-02-01T00:00:00.000Z'))!;
    await store.append('agreement-a', [event('ProgressReported', { commitmentId: 'c-1', percent: 100 })], { expectedRevision: 'any' });
    await store.append('agreement-new', [event('AgreementSigned', { agreementId: 'new' })], { expectedRevision: 'no_stream' });

    const all = await verifyBundle((await collect(archive.lines)).map((l) => l.slice(0, -1)));
    expect(all).toMatchObject({ valid: true, events: 13 });
    expect(all.streams.map((s) => [s.stream, s.events])).toEqual([['agreement-a', 5], ['agreement-b', 5], ['agreement-c', 3]]);
    const one = await verifyBundle((await collect(stream.lines)).map((l) => l.slice(0, -1)));
    expect(one).toMatchObject({ valid: true, events: 5, header: { order: 'stream' } });
  });

  it('finds the revision at the cut for a stream that moved past it before the header was built', async () => {
    const store = storeAt('events.sqlite');
    await writeLog(store);
    const cut = await store.headPosition();
    for (let k = 0; k < 5; k++) await store.append('agreement-b', [event('ProgressReported', { commitmentId: 'c-1', percent: 90 + k })], { expectedRevision: 'any' });
    // A port whose head stands at the earlier cut, as if the appends raced the header.
    const atCut = { ...store, headPosition: async () => cut };
    const archive = await exportArchive(atCut, '2026-02-01T00:00:00.000Z');
    expect(archive.header.streams.find((s) => s.stream === 'agreement-b')).toMatchObject({ revision: 4 });
    expect(await verifyBundle((await collect(archive.lines)).map((l) => l.slice(0, -1)))).toMatchObject({ valid: true, events: 13 });
  });

  it('answer null for a stream that does not exist, and an empty archive for an empty log', async () => {
    const store = storeAt('events.sqlite');
    expect(await exportStream(store, 'agreement-none', '2026-02-01T00:00:00.000Z')).toBeNull();
    const empty = await verifyBundle((await collect((await exportArchive(store, '2026-02-01T00:00:00.000Z')).lines)).map((l) => l.slice(0, -1)));
    expect(empty).toMatchObject({ valid: true, events: 0, streams: [] });
  });
});
