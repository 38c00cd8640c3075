// export, verify and import as an operator and an auditor run them: real processes on real
// SQLite logs in a temp folder. The archive round trip restores a log whose read models, hash
// chains and positions are identical to the original's; verify answers 0, 1 and 2.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteEventStore, verifyChain, type EventStore, type SqliteEventStore } from '@cm/event-store';
import { createLogger } from '@cm/platform';
import { createMemoryReadStore, createProjector, createQueries, waitForCheckpoint } from '@cm/read-models';
import { createLedgerWriter, writeMixedLedger } from '@cm/read-models/testing';
import { runCli } from './testing/run-cli.js';

const NOW = '2026-09-01T00:00:00.000Z';
let dir: string;
let sourceDir: string;
let archive: string;

const cli = runCli;

/** Read models built from a log by the real projector into a memory store. */
async function readModelsOf(eventStore: EventStore) {
  const readStore = createMemoryReadStore();
  const projector = createProjector({ eventStore, readStore, logger: createLogger({ level: 'silent' }) });
  await projector.start();
  const head = await eventStore.headPosition();
  expect(await waitForCheckpoint(readStore, head!, 20_000)).toBe(true);
  await projector.stop();
  const byId = <T extends { agreement?: { id: string }; review?: { id: string } }>(docs: T[]) =>
    docs.sort((a, b) => (a.agreement ?? a.review)!.id.localeCompare((b.agreement ?? b.review)!.id));
  return {
    agreements: byId(await readStore.allAgreements()),
    reviews: byId(await readStore.allReviews()),
    dashboard: await createQueries(readStore).dashboard(NOW),
    checkpoint: await readStore.checkpoint(),
  };
}

async function integrityOf(store: EventStore) {
  const out: Record<string, ReturnType<typeof verifyChain>> = {};
  for (const s of await store.listStreams()) out[s] = verifyChain(await store.readStream(s));
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-bundle-cli-'));
  sourceDir = join(dir, 'source');
  const store = createSqliteEventStore({ path: join(sourceDir, 'events.sqlite') });
  // A fixture, not a ledger: no fsync per append.
  store.db.pragma('synchronous = OFF');
  await writeMixedLedger(createLedgerWriter(store), { agreements: 40, reviews: 8, targetEvents: 900, seed: 23 });
  await store.close();
  archive = join(dir, 'archive.ndjson');
  const exported = cli(['export', '--out', archive], { DATA_DIR: sourceDir });
  expect(exported.stderr).toMatch(/exported [\d,]+ events of \d+ streams in global order/);
  expect(exported.code).toBe(0);
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('export and import: the archive round trip', () => {
  let source: SqliteEventStore;
  let target: SqliteEventStore;
  const targetDir = () => join(dir, 'target');

  beforeAll(() => {
    const imported = cli(['import', archive], { DATA_DIR: targetDir() });
    expect(imported.stderr).not.toMatch(/refus|failed/);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/^imported [\d,]+ events of \d+ streams into /);
    source = createSqliteEventStore({ path: join(sourceDir, 'events.sqlite') });
    target = createSqliteEventStore({ path: join(targetDir(), 'events.sqlite') });
  }, 60_000);

  afterAll(async () => {
    await source.close();
    await target.close();
  });

  it('restores every event with its id, position, times and hashes', async () => {
    const all = (s: EventStore) => s.readAll({ after: null, limit: 1_000_000 });
    const original = await all(source);
    expect(original.length).toBeGreaterThan(800);
    expect(await all(target)).toEqual(original);
    expect(await target.listStreams()).toEqual(await source.listStreams());
  });

  it('gives every stream the same integrity report: same events, same last hash, valid', async () => {
    const before = await integrityOf(source);
    expect(Object.values(before).every((r) => r.valid)).toBe(true);
    expect(await integrityOf(target)).toEqual(before);
  });

  it('projects identical read models: every agreement, every review and the dashboard', async () => {
    const [a, b] = [await readModelsOf(source), await readModelsOf(target)];
    expect(a.agreements.length).toBe(42);
    expect(a.reviews.length).toBe(8);
    expect(b).toEqual(a);
  });

  it('refuses, in one line, to import into a log that holds any event', () => {
    const again = cli(['import', archive], { DATA_DIR: targetDir() });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^refusing to import: the event log at .* already holds events \(up to position \d+\); import only into an empty log\n$/);
  });
});

describe('verify <file>', () => {
  it('exits 0 on a genuine archive, with one line per stream and no configuration at all', () => {
    const r = cli(['verify', archive]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/bundle of 50 streams, \d+ events, global order/);
    expect(lines.filter((l) => /^ {2}(agreement|review)-.*: valid, \d+ events \(hash scheme 2\), last hash [0-9a-f]{64}$/.test(l))).toHaveLength(50);
    expect(lines.at(-1)).toBe('valid: every hash recomputed and every chain intact');
  });

  it('exits 1 naming the stream and revision of an event whose data was edited in the file', () => {
    const lines = readFileSync(archive, 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"type":"ProgressReported"') && !l.includes('"revision":0,'));
    const e = JSON.parse(lines[i]!) as { stream: string; revision: number; data: { percent: number } };
    e.data.percent = e.data.percent === 100 ? 99 : 100;
    lines[i] = JSON.stringify(e);
    const edited = join(dir, 'edited.ndjson');
    writeFileSync(edited, lines.join('\n'));
    const r = cli(['verify', edited]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`  ${e.stream}: INVALID from revision ${e.revision}`);
    expect(r.stdout).toContain(`INVALID: ${e.stream} revision ${e.revision}, line ${i + 1}: the hash does not match`);
  });

  it('exits 1 on a file cut off mid-line, and import refuses it without creating a log', () => {
    const text = readFileSync(archive, 'utf8');
    const cut = join(dir, 'cut.ndjson');
    writeFileSync(cut, text.slice(0, text.length - 40));
    const r = cli(['verify', cut]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/not complete JSON/);
    const importDir = join(dir, 'never');
    const refused = cli(['import', cut], { DATA_DIR: importDir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/refusing to import: the bundle does not verify: .*nothing was written\n$/);
    expect(() => readFileSync(join(importDir, 'events.sqlite'))).toThrow();
  });

  it('exits 2 on a file that cannot be read or is not a bundle', () => {
    const missing = cli(['verify', join(dir, 'nope.ndjson')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`cannot read ${join(dir, 'nope.ndjson')}: no such file\n`);
    const notBundle = join(dir, 'notes.txt');
    writeFileSync(notBundle, 'meeting notes\n');
    const r = cli(['verify', notBundle]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not a readable bundle/);
    expect(cli(['verify', dir]).code).toBe(2);
  });

  it('exits 64 without a file', () => {
    const r = cli(['verify']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/^verify needs a file\nusage:/);
  });
});
