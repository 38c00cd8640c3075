// Audit figures (issue 5): time to verify and to replay (fold) one stream of 10,000 events, and
// to export and re-import an archive of 100,000 events, each beside a baseline measured in the
// same run on the same rows: a raw SQLite SELECT (what reading costs before any JSON, hashing or
// folding), and a raw INSERT of the same rows in one transaction (what writing them costs before
// any chain check). Not a test: it prints figures and writes them to bench/results/.
//
//   pnpm bench:audit                      10,000-event stream, 100,000-event archive
//   pnpm bench:audit --quick              2,000 and 20,000
//   pnpm bench:audit --stream 10000 --archive 100000 --runs 5
//
// Export and import are timed in-process (the library path the CLI runs) and as the operator
// runs them (`cli export` / `cli import` as child processes, so process start-up is included;
// start-up alone is measured too). Everything lives in a temp folder that is deleted.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { evolveAgreement, initialAgreementState, type AgreementEvent, type AgreementState, type Timed } from '@cm/domain';
import {
  createSqliteEventStore, exportArchive, exportStream, readBundleEvents, verifyBundle, verifyChain, type NewEvent, type SqliteEventStore,
} from '@cm/event-store';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const STREAM_EVENTS = Number(flag('--stream') ?? (quick ? 2_000 : 10_000));
const ARCHIVE_EVENTS = Number(flag('--archive') ?? (quick ? 20_000 : 100_000));
const RUNS = Number(flag('--runs') ?? 5);
const PER_AGREEMENT = 100; // 1 signature + 10 commitments + 89 progress reports, as in bench:rebuild
const COMMITMENTS = 10;
const dir = mkdtempSync(join(tmpdir(), 'cm-audit-bench-'));

const say = (s: string) => process.stdout.write(s);
const seconds = (from: number) => (performance.now() - from) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs `fn` RUNS times (after one warm-up) and answers the median in seconds. */
async function timed(label: string, fn: () => unknown): Promise<number> {
  await fn();
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await fn();
    runs.push(seconds(t));
  }
  const m = median(runs);
  say(`  ${label}: ${(m * 1000).toFixed(1)} ms (median of ${RUNS})\n`);
  return m;
}

const meta = (i: number) => ({ actor: 'bench', occurredAt: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(), correlationId: randomUUID() });

function agreementEvents(id: string, a: number, count: number): NewEvent[] {
  const events: NewEvent[] = [{
    id: randomUUID(),
    type: 'AgreementSigned',
    data: { agreementId: id, title: `Bench agreement ${a}`, kind: 'agreement', sector: ['health', 'energy', 'science', 'air_connectivity'][a % 4], parties: ['VEN', 'RUS'], signedAt: '2025-11-28', session: { name: 'CIAN XIX', date: '2025-11-28' } },
    metadata: meta(0),
  }];
  for (let c = 0; c < COMMITMENTS && events.length < count; c++) {
    events.push({
      id: randomUUID(),
      type: 'CommitmentAdded',
      data: { agreementId: id, commitmentId: `c-${c}`, title: `Commitment ${c}`, dueDate: `202${6 + (c % 3)}-0${1 + (c % 9)}-15`, responsible: { party: c % 2 ? 'RUS' : 'VEN', institution: `Institution ${c % 7}` } },
      metadata: meta(c + 1),
    });
  }
  for (let k = 0; events.length < count; k++) {
    events.push({ id: randomUUID(), type: 'ProgressReported', data: { commitmentId: `c-${k % COMMITMENTS}`, percent: k % 100, note: k % 3 ? undefined : `Report ${k}` }, metadata: meta(k + 20) });
  }
  // JSON has no undefined: drop it, as a real request body would not carry it.
  return events.map((e) => ({ ...e, data: JSON.parse(JSON.stringify(e.data)) as unknown }));
}

async function appendAll(store: SqliteEventStore, stream: string, events: NewEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) await store.append(stream, events.slice(i, i + 500), { expectedRevision: 'any' });
}

async function writeLines(lines: AsyncIterable<string>, file: string): Promise<void> {
  async function* chunks() {
    let buffer = '';
    for await (const l of lines) {
      buffer += l;
      if (buffer.length >= 65_536) {
        yield buffer;
        buffer = '';
      }
    }
    if (buffer) yield buffer;
  }
  await pipeline(Readable.from(chunks()), createWriteStream(file));
}

const fileLines = (file: string) => createInterface({ input: createReadStream(file), crlfDelay: Infinity });

function cli(argv: string[], env: Record<string, string>) {
  const t = performance.now();
  const r = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'services/cli/src/main.ts'), ...argv], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'warn', ...env }, encoding: 'utf8', timeout: 600_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, seconds: seconds(t) };
}

async function streamFigures() {
  say(`\n1. one stream of ${STREAM_EVENTS.toLocaleString('en')} events\n`);
  const store = createSqliteEventStore({ path: join(dir, 'stream.sqlite') });
  const stream = 'agreement-bench-long';
  await appendAll(store, stream, agreementEvents('bench-long', 0, STREAM_EVENTS));
  say(`  written (${STREAM_EVENTS.toLocaleString('en')} events in batches of 500)\n`);
  const raw = store.db.prepare('SELECT * FROM events WHERE stream = ? ORDER BY revision');
  const events = await store.readStream(stream);
  let check: unknown;

  const rawSelect = await timed('baseline: raw SQLite SELECT of the rows', () => {
    check = raw.all(stream).length;
  });
  const read = await timed('readStream (rows parsed into events)', async () => {
    check = (await store.readStream(stream)).length;
  });
  const verify = await timed('verify: verifyChain, every hash recomputed (events in memory)', () => {
    check = verifyChain(events).valid;
  });
  const readVerify = await timed('read + verify (what GET /integrity does)', async () => {
    check = verifyChain(await store.readStream(stream)).valid;
  });
  const fold = await timed('replay: fold with evolveAgreement (events in memory)', () => {
    let s: AgreementState = initialAgreementState();
    for (const e of events) s = evolveAgreement(s, { type: e.type, data: e.data, occurredAt: e.metadata.occurredAt } as Timed<AgreementEvent>);
    check = s;
  });
  const readFold = await timed('read + replay', async () => {
    let s: AgreementState = initialAgreementState();
    for (const e of await store.readStream(stream)) s = evolveAgreement(s, { type: e.type, data: e.data, occurredAt: e.metadata.occurredAt } as Timed<AgreementEvent>);
    check = s;
  });
  const bundleFile = join(dir, 'stream.ndjson');
  const exportOne = await timed('export the stream to an NDJSON file', async () => {
    await writeLines((await exportStream(store, stream, new Date().toISOString()))!.lines, bundleFile);
  });
  const verifyFile = await timed('verify the bundle file offline (verifyBundle, reading the file)', async () => {
    const r = await verifyBundle(fileLines(bundleFile));
    if (!r.valid) throw new Error('the bench bundle does not verify');
  });
  void check;
  await store.close();
  return { events: STREAM_EVENTS, seconds: { rawSelect, read, verify, readVerify, fold, readFold, exportOne, verifyFile } };
}

async function archiveFigures() {
  say(`\n2. an archive of ${ARCHIVE_EVENTS.toLocaleString('en')} events (${Math.ceil(ARCHIVE_EVENTS / PER_AGREEMENT).toLocaleString('en')} streams of ${PER_AGREEMENT})\n`);
  const sourceDir = join(dir, 'source');
  const store = createSqliteEventStore({ path: join(sourceDir, 'events.sqlite') });
  let written = 0;
  const started = performance.now();
  for (let a = 0; written < ARCHIVE_EVENTS; a++) {
    const id = `bench-${String(a).padStart(6, '0')}`;
    const events = agreementEvents(id, a, Math.min(PER_AGREEMENT, ARCHIVE_EVENTS - written));
    await store.append(`agreement-${id}`, events, { expectedRevision: 'no_stream' });
    written += events.length;
    if (a % 100 === 0) say(`\r  writing the log: ${written.toLocaleString('en')}/${ARCHIVE_EVENTS.toLocaleString('en')} events`);
  }
  say(`\r  writing the log: ${written.toLocaleString('en')} events in ${seconds(started).toFixed(1)} s\n`);

  // Baselines: the same rows straight out of SQLite, and straight into a fresh file.
  let t = performance.now();
  const rows = store.db.prepare('SELECT * FROM events ORDER BY position').all() as Record<string, unknown>[];
  const rawSelect = seconds(t);
  say(`  baseline: raw SELECT of the ${rows.length.toLocaleString('en')} rows: ${rawSelect.toFixed(2)} s\n`);
  const rawDb = new Database(join(dir, 'raw.sqlite'));
  rawDb.pragma('journal_mode = WAL');
  rawDb.pragma('synchronous = FULL');
  rawDb.exec((store.db.prepare("SELECT group_concat(sql, ';') AS s FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL AND name NOT LIKE 'sqlite_%'").get() as { s: string }).s);
  const insert = rawDb.prepare(`INSERT INTO events (position, event_id, stream, revision, type, data, metadata, recorded_at, prev_hash, hash)
    VALUES (@position, @event_id, @stream, @revision, @type, @data, @metadata, @recorded_at, @prev_hash, @hash)`);
  t = performance.now();
  rawDb.transaction(() => {
    for (const r of rows) insert.run(r);
  })();
  const rawInsert = seconds(t);
  rawDb.close();
  say(`  baseline: raw INSERT of the same rows, one transaction: ${rawInsert.toFixed(2)} s\n`);

  // In-process: the library path the CLI runs.
  const file = join(dir, 'archive.ndjson');
  t = performance.now();
  const archive = await exportArchive(store, new Date().toISOString());
  let done = 0;
  async function* counted() {
    for await (const line of archive.lines) {
      if (++done % 20_000 === 0) say(`\r  exporting: ${done.toLocaleString('en')} lines`);
      yield line;
    }
  }
  await writeLines(counted(), file);
  const exportSeconds = seconds(t);
  say(`\r  export (in-process): ${exportSeconds.toFixed(2)} s, ${(statSync(file).size / 2 ** 20).toFixed(1)} MiB\n`);
  await store.close();

  t = performance.now();
  const report = await verifyBundle(fileLines(file));
  const verifySeconds = seconds(t);
  if (!report.valid) throw new Error(`the bench archive does not verify: ${report.firstError?.reason}`);
  say(`  verify the archive file (in-process): ${verifySeconds.toFixed(2)} s\n`);

  const target = createSqliteEventStore({ path: join(dir, 'target.sqlite') });
  t = performance.now();
  const imported = await target.importEvents(readBundleEvents(fileLines(file)));
  const importSeconds = seconds(t);
  await target.close();
  say(`  import (in-process, after the verify above): ${importSeconds.toFixed(2)} s for ${imported.events.toLocaleString('en')} events\n`);

  // As the operator runs them: child processes, start-up included.
  const startup = cli(['verify', join(dir, 'none.ndjson')], {});
  say(`  process start-up alone (tsx, \`cli verify\` of a missing file): ${startup.seconds.toFixed(2)} s\n`);
  const cliFile = join(dir, 'cli-archive.ndjson');
  const cliExport = cli(['export', '--out', cliFile], { DATA_DIR: sourceDir });
  if (cliExport.code !== 0) throw new Error(`cli export failed: ${cliExport.stderr}`);
  say(`  cli export: ${cliExport.seconds.toFixed(2)} s\n`);
  const cliImport = cli(['import', cliFile], { DATA_DIR: join(dir, 'cli-target') });
  if (cliImport.code !== 0) throw new Error(`cli import failed: ${cliImport.stderr}`);
  say(`  cli import (verify, then import): ${cliImport.seconds.toFixed(2)} s\n`);

  return {
    events: written,
    bundleBytes: statSync(file).size,
    seconds: {
      rawSelect, rawInsert, export: exportSeconds, verify: verifySeconds, import: importSeconds,
      cliStartup: startup.seconds, cliExport: cliExport.seconds, cliImport: cliImport.seconds,
    },
  };
}

async function main() {
  say(`audit bench: ${STREAM_EVENTS.toLocaleString('en')}-event stream, ${ARCHIVE_EVENTS.toLocaleString('en')}-event archive, temp folder ${dir}\n`);
  const stream = await streamFigures();
  const archive = await archiveFigures();
  const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`;
  const sec = (s: number) => `${s.toFixed(2)} s`;
  const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en')} events/s`;
  const x = (s: number, base: number) => `${(s / base).toFixed(1)}x baseline`;
  const s = stream.seconds;
  const a = archive.seconds;
  const rows: [string, string, string][] = [
    [`stream of ${stream.events.toLocaleString('en')}: raw SELECT (baseline)`, ms(s.rawSelect), rate(stream.events, s.rawSelect)],
    ['  read (readStream)', ms(s.read), x(s.read, s.rawSelect)],
    ['  verify (verifyChain, in memory)', ms(s.verify), rate(stream.events, s.verify)],
    ['  read + verify (= GET /integrity)', ms(s.readVerify), x(s.readVerify, s.rawSelect)],
    ['  replay (fold, in memory)', ms(s.fold), rate(stream.events, s.fold)],
    ['  read + replay', ms(s.readFold), x(s.readFold, s.rawSelect)],
    ['  export to file / verify file offline', `${ms(s.exportOne)} / ${ms(s.verifyFile)}`, ''],
    [`archive of ${archive.events.toLocaleString('en')}: raw SELECT (baseline)`, sec(a.rawSelect), rate(archive.events, a.rawSelect)],
    ['  export to NDJSON (in-process)', sec(a.export), `${rate(archive.events, a.export)}, ${x(a.export, a.rawSelect)}`],
    ['  raw INSERT, one transaction (baseline)', sec(a.rawInsert), rate(archive.events, a.rawInsert)],
    ['  verify the file (in-process)', sec(a.verify), rate(archive.events, a.verify)],
    ['  import (in-process, chain re-checked)', sec(a.import), `${rate(archive.events, a.import)}, ${x(a.import, a.rawInsert)}`],
    ['  verify + import', sec(a.verify + a.import), x(a.verify + a.import, a.rawInsert)],
    ['  cli export / cli import (wall, with start-up)', `${sec(a.cliExport)} / ${sec(a.cliImport)}`, `start-up alone ${sec(a.cliStartup)}`],
  ];
  say('\n');
  for (const [what, value, note] of rows) say(`${what.padEnd(52)} ${value.padStart(16)}  ${note}\n`);
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  const file = join(out, `audit-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, platform: `${process.platform}/${process.arch}` },
    runs: RUNS, stream, archive,
  }, null, 2)}\n`);
  say(`\nresults written to ${file}\n`);
}

main()
  .catch((err: unknown) => {
    console.error(`audit bench failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
