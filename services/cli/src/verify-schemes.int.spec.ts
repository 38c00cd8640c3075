// verify on bundles exported from a SQLite file edited by hand: rows of two streams exchanged
// (detected under hash scheme 2), and what each stream's line says about its hash scheme.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteEventStore } from '@cm/event-store';
import { runCli } from './testing/run-cli.js';

let dir: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-verify-schemes-'));
  const store = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
  for (const id of ['a', 'b']) {
    for (let i = 0; i < 3; i++) {
      await store.append(`agreement-${id}`, [{ id: `${id}-${i}`, type: 'ProgressReported', data: { i, of: id }, metadata: { actor: 'test', occurredAt: '2026-01-01T00:00:00.000Z', correlationId: `c-${id}-${i}` } }], { expectedRevision: 'any' });
    }
  }
  await store.close();
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('verify a bundle of a log whose rows were exchanged between streams', () => {
  it('says the scheme of each stream of a genuine export', () => {
    const out = join(dir, 'archive.ndjson');
    expect(runCli(['export', '--out', out], { DATA_DIR: dir }).code).toBe(0);
    const r = runCli(['verify', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ {2}agreement-a: valid, 3 events \(hash scheme 2\), last hash [0-9a-f]{64}\n/);
  });

  it('exits 1 naming the first stream whose rows belong to another', async () => {
    const store = createSqliteEventStore({ path: join(dir, 'events.sqlite') });
    store.db.transaction(() => {
      for (const table of ['events', 'streams']) {
        store.db.prepare(`UPDATE ${table} SET stream = 'tmp' WHERE stream = 'agreement-a'`).run();
        store.db.prepare(`UPDATE ${table} SET stream = 'agreement-a' WHERE stream = 'agreement-b'`).run();
        store.db.prepare(`UPDATE ${table} SET stream = 'agreement-b' WHERE stream = 'tmp'`).run();
      }
    })();
    await store.close();
    const out = join(dir, 'archive.ndjson');
    expect(runCli(['export', '--out', out], { DATA_DIR: dir }).code).toBe(0);
    const r = runCli(['verify', out]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/INVALID: agreement-b revision 0, line 2: prevHash of revision 0 is not the scheme 2 genesis hash of stream agreement-b/);
  });
});
