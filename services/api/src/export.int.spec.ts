// Bundles over HTTP and the tamper test an auditor relies on: a stream's export is NDJSON that
// verifies offline; after one stored event is edited directly in the SQLite file, both
// `/integrity` and `cli verify` of a fresh export (over HTTP, and by `cli export`) name the
// edited revision.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyBundle } from '@cm/event-store';
import { createTestApp, type TestApp } from './testing/test-app.js';
import { command, commitmentInput, createAgreement, expectProblem, get, post, settle, type Json } from './testing/api-fixtures.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const NOW = '2026-03-02T10:00:00.000Z';
const base = '/v1/agreements/ag-export';

// The auditor's side runs as its own process, with nothing but the file (and, to export, the log).
function cli(args: string[], env: Record<string, string> = {}) {
  const { PATH, HOME } = process.env;
  const r = spawnSync(join(root, 'node_modules/.bin/tsx'), [join(root, 'services/cli/src/main.ts'), ...args], {
    env: { PATH: PATH ?? '', HOME: HOME ?? '', LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const linesOf = (body: string) => body.split('\n');

let t: TestApp;
beforeEach(async () => {
  t = await createTestApp({ now: NOW });
});
afterEach(async () => {
  await t.close();
});

async function seed(): Promise<void> {
  await createAgreement(t, { id: 'ag-export', occurredAt: '2025-11-28T15:00:00Z', commitments: [commitmentInput({ id: 'plant', dueDate: '2030-06-30' })] });
  await command(t, `${base}/commitments/plant/progress`, { percent: 40, note: 'Foundations poured', occurredAt: '2026-01-10T12:00:00Z' });
  await command(t, `${base}/commitments/plant/delay`, { reason: 'Supplier late', newDueDate: '2031-01-31' });
  await command(t, `${base}/commitments/plant/progress`, { percent: 55 });
  const review = await post(t, '/v1/reviews', {
    id: 'rev-export', title: 'Quarterly review', scheduledFor: '2026-04-01T09:00:00Z', agreementIds: ['ag-export'], attendees: [{ email: 'desk@example.org' }],
  });
  expect(review.statusCode, review.body).toBe(201);
  await settle(t, review.json<Json>().position);
}

describe('GET /v1/agreements/{id}/export and /v1/reviews/{id}/export', () => {
  it('streams the agreement as an NDJSON attachment that verifies offline', async () => {
    await seed();
    const res = await get(t, `${base}/export`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['content-disposition']).toBe('attachment; filename="agreement-ag-export.ndjson"');
    const report = await verifyBundle(linesOf(res.body));
    expect(report).toMatchObject({ valid: true, events: 5, header: { order: 'stream', createdAt: NOW } });
    const integrity = (await get(t, `${base}/integrity`)).json<Json>();
    expect(report.streams).toEqual([{ stream: 'agreement-ag-export', events: 5, lastHash: integrity.lastHash, valid: true, firstInvalidRevision: null, schemes: { 2: 5 } }]);
  });

  it('serves the same bundle at history?format=ndjson, and history without it stays JSON', async () => {
    await seed();
    const exported = await get(t, `${base}/export`);
    const viaHistory = await get(t, `${base}/history?format=ndjson`);
    expect(viaHistory.statusCode).toBe(200);
    expect(viaHistory.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(viaHistory.body).toBe(exported.body);
    const json = await get(t, `${base}/history?limit=2`);
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(json.json<Json>().events).toHaveLength(2);
    expect((await get(t, `${base}/history?format=json`)).headers['content-type']).toMatch(/^application\/json/);
    const review = await get(t, '/v1/reviews/rev-export/history?format=ndjson');
    expect(review.body).toBe((await get(t, '/v1/reviews/rev-export/export')).body);
  });

  it('streams a review the same way', async () => {
    await seed();
    const res = await get(t, '/v1/reviews/rev-export/export');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-disposition']).toBe('attachment; filename="review-rev-export.ndjson"');
    expect(await verifyBundle(linesOf(res.body))).toMatchObject({ valid: true, streams: [{ stream: 'review-rev-export', valid: true }] });
  });

  it('answers 404 problem+json for an unknown agreement or review', async () => {
    expect(expectProblem(await get(t, '/v1/agreements/never-signed/export'), 404).code).toBe('agreement_not_found');
    expect(expectProblem(await get(t, '/v1/agreements/never-signed/history?format=ndjson'), 404).code).toBe('agreement_not_found');
    expect(expectProblem(await get(t, '/v1/reviews/never-held/export'), 404).code).toBe('review_not_found');
  });
});

describe('one event edited in the SQLite file', () => {
  it('is named by /integrity and by verify of a fresh export, over HTTP and from the CLI', async () => {
    await seed();
    const before = join(t.dir, 'before.ndjson');
    writeFileSync(before, (await get(t, `${base}/export`)).body);
    expect(cli(['verify', before]).code).toBe(0);

    const tampered = { commitmentId: 'plant', percent: 95, note: 'Foundations poured' };
    const changed = t.eventStore.db
      .prepare('UPDATE events SET data = ? WHERE stream = ? AND revision = ?')
      .run(JSON.stringify(tampered), 'agreement-ag-export', 2).changes;
    expect(changed).toBe(1);

    expect((await get(t, `${base}/integrity`)).json()).toMatchObject({ valid: false, events: 5, firstInvalidRevision: 2 });

    const overHttp = join(t.dir, 'after-http.ndjson');
    writeFileSync(overHttp, (await get(t, `${base}/export`)).body);
    const http = cli(['verify', overHttp]);
    expect(http.code).toBe(1);
    expect(http.stdout).toContain('  agreement-ag-export: INVALID from revision 2');
    expect(http.stdout).toContain('INVALID: agreement-ag-export revision 2, line 4: the hash does not match');

    const archive = join(t.dir, 'archive.ndjson');
    const exported = cli(['export', '--out', archive], { DATA_DIR: t.dir });
    expect(exported.code, exported.stderr).toBe(0);
    const offline = cli(['verify', archive]);
    expect(offline.code).toBe(1);
    expect(offline.stdout).toContain('  agreement-ag-export: INVALID from revision 2');
    expect(offline.stdout).toMatch(/ {2}review-rev-export: valid/);
    expect(offline.stdout).toMatch(/INVALID: agreement-ag-export revision 2, line \d+: the hash does not match/);

    // The copy taken before the edit still verifies: it is the auditor's evidence of the original.
    expect(cli(['verify', before]).code).toBe(0);
  }, 60_000);
});
