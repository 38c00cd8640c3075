// `import` reads its bundle twice (verified in full, then imported): a file cut or replaced
// between the two reads is refused and nothing is written. The file is cut by the test at the
// moment the import starts, through the progress hook the command calls between the reads.
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundleHeader, createSqliteEventStore, writeBundle, type StoredEvent } from '@cm/event-store';
import { runImport } from './import-command.js';

let dir: string;
let archive: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-reread-'));
  archive = join(dir, 'archive.ndjson');
  const source = createSqliteEventStore({ path: join(dir, 'source.sqlite') });
  for (const id of ['a', 'b']) {
    for (let i = 0; i < 3; i++) {
      await source.append(`agreement-${id}`, [{ id: `${id}-${i}`, type: 'ProgressReported', data: { i }, metadata: { actor: 'test', occurredAt: '2026-01-01T00:00:00.000Z', correlationId: `c-${id}-${i}` } }], { expectedRevision: 'any' });
    }
  }
  const events: StoredEvent[] = await source.readAll({ after: null, limit: 100 });
  const heads = ['agreement-a', 'agreement-b'].map((stream) => {
    const last = events.filter((e) => e.stream === stream).at(-1)!;
    return { stream, revision: last.revision, lastHash: last.hash };
  });
  let text = '';
  for await (const line of writeBundle(bundleHeader('global', '2026-03-01T00:00:00.000Z', heads), events)) text += line;
  writeFileSync(archive, text);
  await source.close();
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function importWith(betweenReads: () => void) {
  const target = join(dir, 'target.sqlite');
  let stderr = '';
  const code = await runImport({
    file: archive, target, logExists: false,
    openStore: () => createSqliteEventStore({ path: target }),
    stdout: () => {}, stderr: (s) => { stderr += s; },
    progress: (label) => {
      if (label === 'importing') betweenReads();
      return { update: () => {}, end: () => {} };
    },
    now: () => new Date(),
  });
  const store = createSqliteEventStore({ path: target });
  const head = await store.headPosition();
  await store.close();
  return { code, stderr, head };
}

describe('import: the second read is checked against the first', () => {
  it('imports a file left alone between the reads', async () => {
    const r = await importWith(() => {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.head).toBe('6');
  });

  it('refuses a file cut at a line boundary between the reads, and writes nothing', async () => {
    const text = readFileSync(archive, 'utf8');
    const keep = text.split('\n').slice(0, 5).join('\n').length + 1; // header and 4 of 6 events
    const r = await importWith(() => truncateSync(archive, keep));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to import: the file changed between its verification and its import/);
    expect(r.head).toBeNull();
  });

  it('refuses a file replaced by a shorter genuine bundle between the reads', async () => {
    const lines = readFileSync(archive, 'utf8').split('\n');
    // Stream b's last event dropped and the header made to agree: a bundle that verifies on its own.
    const header = JSON.parse(lines[0]!);
    const b = JSON.parse(lines[5]!);
    header.streams[1] = { stream: 'agreement-b', revision: 1, lastHash: b.hash };
    header.events = 5;
    const shorter = [JSON.stringify(header), ...lines.slice(1, 6), ''].join('\n');
    const r = await importWith(() => writeFileSync(archive, shorter));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/changed between its verification and its import/);
    expect(r.head).toBeNull();
  });
});
