// Spreadsheets through HTTP: export, import (dry run and applied), hostile files, template.
import { afterEach, describe, expect, it } from 'vitest';
import ExcelJS from 'exceljs';
import { bearer, createTestApp, type TestApp } from './testing/test-app.js';
import { createAgreement, command, commitmentInput, expectNothingAppended, settle, type Json } from './testing/api-fixtures.js';

const CSV = 'text/csv';
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const apps: TestApp[] = [];
afterEach(async () => { for (const t of apps.splice(0)) await t.close(); });
async function app() { const t = await createTestApp({ now: '2026-03-01T10:00:00Z' }); apps.push(t); return t; }
const upload = (t: TestApp, body: Buffer | string, type: string, dryRun = false) =>
  t.app.inject({ method: 'POST', url: `/v1/imports?dryRun=${dryRun}&fileName=plan.csv`, payload: body, headers: { 'content-type': type } });

async function seed(t: TestApp) {
  await createAgreement(t, { id: 'health-vaccines', title: 'Acuerdo de salud: vacunas', commitments: [
    commitmentInput({ id: 'plant-open', title: '=HYPERLINK("x") planta' }),
    commitmentInput({ id: 'staff-trained', title: 'Обучить персонал', responsible: { party: 'RUS', institution: 'Минздрав России' } }),
  ] });
  await command(t, '/v1/agreements/health-vaccines/commitments/plant-open/progress', { percent: 40 });
}

describe('spreadsheets', () => {
  it('exports CSV with BOM and neutralised formulas, and a re-import into an empty ledger gives the same export', async () => {
    const t = await app();
    await seed(t);
    const csv = await t.app.inject({ method: 'GET', url: '/v1/commitments?format=csv' });
    expect(csv.statusCode).toBe(200);
    expect(csv.rawPayload.subarray(0, 3).toString('hex')).toBe('efbbbf');
    expect(csv.body).toContain("'=HYPERLINK");
    expect(csv.body).toContain('Обучить персонал');
    const again = await upload(t, csv.rawPayload, CSV);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json().unchanged).toBe(2);
    expect(again.json().position).toBeNull();

    const empty = await app();
    const imported = await upload(empty, csv.rawPayload, CSV);
    expect(imported.statusCode, imported.body).toBe(201);
    expect(imported.json().created).toEqual({ agreements: 1, commitments: 2 });
    await settle(empty, imported.json().position);
    const second = await empty.app.inject({ method: 'GET', url: '/v1/commitments?format=csv' });
    expect(second.body).toBe(csv.body);
    const events = await empty.eventStore.readStream('agreement-health-vaccines');
    expect(events[0]!.metadata.source).toMatchObject({ kind: 'import', fileName: 'plan.csv' });
  });

  it('round-trips XLSX with Cyrillic text, and a progress change is one event', async () => {
    const t = await app();
    await seed(t);
    const x = await t.app.inject({ method: 'GET', url: '/v1/commitments', headers: { accept: XLSX } });
    expect(x.headers['content-type']).toContain(XLSX);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(x.rawPayload as unknown as ArrayBuffer);
    const sheet = wb.getWorksheet('commitments')!;
    expect(sheet.getRow(3).getCell(10).value).toBe('Обучить персонал');
    sheet.getRow(2).getCell(15).value = 75; // plant-open progress 40 -> 75
    const changed = Buffer.from(await wb.xlsx.writeBuffer());
    const dry = await expectNothingAppended(t, () => upload(t, changed, XLSX, true));
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json()).toMatchObject({ updated: 1, unchanged: 1 });
    const before = await t.eventStore.streamRevision('agreement-health-vaccines');
    const applied = await upload(t, changed, XLSX);
    expect(applied.statusCode, applied.body).toBe(201);
    expect(await t.eventStore.streamRevision('agreement-health-vaccines')).toBe(before + 1);
  });

  it('names every bad cell and records nothing', async () => {
    const t = await app();
    const header = 'agreement_id,agreement_title,kind,sector,parties,signed_at,session_name,session_date,commitment_id,commitment_title,responsible_party,responsible_institution,due_date,status,progress,note';
    const body = [header,
      'ok-agreement,T,agreement,health,VEN;RUS,2025-02-30,,,c-one,T,VEN,M,2026-05-01,,,',
      'ok-agreement,T,agreement,health,VEN;RUS,2025-02-28,,,c-one,T,VEN,M,2026-05-01,,150,',
      'ok-agreement,T,treaty,health,VEN,2025-02-28,,,c-two,T,XXX,M,soon,,,'].join('\r\n');
    const res = await expectNothingAppended(t, () => upload(t, body, CSV));
    expect(res.statusCode).toBe(422);
    const fields = (res.json().problems as Json[]).map((p) => `${p.row}:${p.field}`);
    expect(fields).toEqual(expect.arrayContaining(['2:signed_at', '3:progress', '4:kind', '4:parties', '4:responsible_party', '4:due_date']));
  });

  it('refuses files that are not spreadsheets, truncated zips and duplicate ids', async () => {
    const t = await app();
    await seed(t);
    const x = (await t.app.inject({ method: 'GET', url: '/v1/commitments?format=xlsx' })).rawPayload;
    for (const [body, type] of [[Buffer.from([0, 1, 2, 3, 0xff]), CSV], [Buffer.from('not a zip'), XLSX], [x.subarray(0, x.length - 200), XLSX]] as const) {
      const res = await expectNothingAppended(t, () => upload(t, body, type));
      expect(res.statusCode, res.body).toBe(422);
      expect(res.json().code).toBe('unreadable_file');
    }
    const csv = (await t.app.inject({ method: 'GET', url: '/v1/commitments?format=csv' })).body;
    const lines = csv.trimEnd().split('\r\n');
    const dup = await upload(t, [...lines, lines[1]].join('\r\n'), CSV);
    expect(dup.statusCode).toBe(422);
    expect(dup.json().problems[0].field).toBe('commitment_id');
  });

  it('serves a template with both header rows and an instructions sheet', async () => {
    const t = await app();
    const res = await t.app.inject({ method: 'GET', url: '/v1/imports/template?format=xlsx&lang=es' });
    expect(res.statusCode).toBe(200);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(res.rawPayload as unknown as ArrayBuffer);
    expect(String(wb.getWorksheet('commitments')!.getRow(2).getCell(1).value)).toMatch(/^# Id del acuerdo/);
    expect(wb.getWorksheet('instructions')).toBeDefined();
    expect(wb.getWorksheet('commitments')!.getCell('C3').dataValidation.type).toBe('list');
  });

  it('names the row of another party\'s commitment as forbidden for an editor, and records nothing', async () => {
    const admin = { name: 'admin', role: 'admin' as const, secret: 'admin-secret-123' };
    const ven = { name: 'ven-editor', role: 'editor' as const, parties: ['VEN'], secret: 'ven-secret-1234' };
    const t = await createTestApp({ now: '2026-03-01T10:00:00Z', keys: [admin, ven] });
    apps.push(t);
    const created = await t.app.inject({ method: 'POST', url: '/v1/agreements', headers: { ...bearer(admin), 'content-type': 'application/json' }, payload: {
      id: 'energy-grid', title: 'Energy', kind: 'agreement', sector: 'energy', parties: ['VEN', 'RUS'], signedAt: '2025-11-28',
      commitments: [commitmentInput({ id: 'ven-part' }), commitmentInput({ id: 'rus-part', responsible: { party: 'RUS', institution: 'Minenergo' } })],
    } });
    expect(created.statusCode, created.body).toBe(201);
    await t.app.inject({ method: 'GET', url: `/v1/dashboard?after=${created.json().position}`, headers: bearer(admin) });
    const csv = (await t.app.inject({ method: 'GET', url: '/v1/commitments?format=csv', headers: bearer(admin) })).body;
    const changed = csv.replace(/(rus-part,[^\r]*?,)0,/, '$150,').replace(/(ven-part,[^\r]*?,)0,/, '$120,');
    expect(changed).not.toBe(csv);
    const res = await expectNothingAppended(t, () => t.app.inject({ method: 'POST', url: '/v1/imports', headers: { ...bearer(ven), 'content-type': CSV }, payload: changed }));
    expect(res.statusCode, res.body).toBe(422);
    const problems = res.json().problems as Json[];
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ field: 'progress' });
    expect(problems[0]!.message).toMatch(/^forbidden/);
  });
  it('exports a commitment whose due date waits for entry into force with an empty due_date, and re-imports it unchanged', async () => {
    const t = await app();
    await createAgreement(t, { id: 'energy-grid', commitments: [
      commitmentInput({ id: 'grid-study', dueDate: { relativeTo: 'entry_into_force', days: 90 } }),
      commitmentInput({ id: 'fixed' }),
    ] });
    const csv = (await t.app.inject({ method: 'GET', url: '/v1/commitments?format=csv' })).body;
    const grid = csv.split('\r\n').find((l) => l.includes(',grid-study,'))!;
    expect(grid.split(',')[12]).toBe('');
    const again = await expectNothingAppended(t, () => upload(t, csv, CSV));
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toMatchObject({ unchanged: 2, updated: 0, position: null });

    // A date where the ledger has none yet is a due date change, not a match.
    const dated = csv.replace(/(,grid-study,(?:[^,]*,){3})(,)/, '$12027-01-01$2');
    expect(dated).not.toBe(csv);
    const refused = await expectNothingAppended(t, () => upload(t, dated, CSV));
    expect(refused.statusCode, refused.body).toBe(422);
    expect((refused.json().problems as Json[]).map((p) => `${p.field}`)).toEqual(['due_date']);

    // A new commitment needs its date: a sheet has no column for a relative rule.
    const added = `${csv.trimEnd()}\r\n${grid.replace('grid-study', 'new-one')}`;
    const undated = await expectNothingAppended(t, () => upload(t, added, CSV));
    expect(undated.statusCode, undated.body).toBe(422);
    expect(undated.json().problems).toEqual([expect.objectContaining({ field: 'due_date', column: 'M', message: expect.stringMatching(/new commitment/) })]);
  });

  it('creates a new commitment row that says implemented or cancelled and records that status; refuses one that says delayed, naming status', async () => {
    const t = await app();
    await createAgreement(t, { id: 'health-vaccines', commitments: [commitmentInput({ id: 'plant-open' })] });
    const csv = (await t.app.inject({ method: 'GET', url: '/v1/commitments?format=csv' })).body.trimEnd();
    const row = csv.split('\r\n')[1]!;
    const like = (id: string, status: string, note: string) => row.replace('plant-open', id).replace(/,pending,0,$/, `,${status},0,${note}`);
    expect(like('x', 'implemented', '')).not.toBe(row.replace('plant-open', 'x'));

    const delayed = await expectNothingAppended(t, () => upload(t, [csv, like('late-one', 'delayed', 'Funds late')].join('\r\n'), CSV));
    expect(delayed.statusCode, delayed.body).toBe(422);
    expect(delayed.json().problems).toEqual([expect.objectContaining({ row: 3, field: 'status', column: 'N' })]);

    const unreasoned = await expectNothingAppended(t, () => upload(t, [csv, like('dropped', 'cancelled', '')].join('\r\n'), CSV));
    expect(unreasoned.statusCode, unreasoned.body).toBe(422);
    expect(unreasoned.json().problems).toEqual([expect.objectContaining({ row: 3, field: 'note' })]);

    const file = [csv, like('done-one', 'implemented', ''), like('dropped', 'cancelled', 'Merged into plant-open')].join('\r\n');
    const res = await upload(t, file, CSV);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ created: { agreements: 0, commitments: 2 }, unchanged: 1, plan: [
      { row: 2, outcome: 'unchanged', actions: [] },
      { row: 3, commitmentId: 'done-one', outcome: 'created', actions: ['add_commitment', 'implement'] },
      { row: 4, commitmentId: 'dropped', outcome: 'created', actions: ['add_commitment', 'cancel'] },
    ] });
    await settle(t, res.json().position);
    const after = await t.app.inject({ method: 'GET', url: '/v1/commitments?format=csv' });
    expect(after.body).toContain(',done-one,');
    expect(after.body).toMatch(/,dropped,[^\r]*,cancelled,0,Merged into plant-open\r\n/);
    expect(after.body).toMatch(/,done-one,[^\r]*,implemented,/);
    const again = await expectNothingAppended(t, () => upload(t, after.rawPayload, CSV));
    expect(again.json(), again.body).toMatchObject({ unchanged: 3 });
  });
});
