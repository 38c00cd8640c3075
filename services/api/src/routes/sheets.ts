// Spreadsheets in and out: `POST /v1/imports` (CSV or XLSX body, dry run or applied, all or
// nothing), `GET /v1/imports/template`, and the CSV/XLSX answers of `GET /v1/commitments`
// (exportCommitments, called by that route when a sheet is asked for).
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import ExcelJS from 'exceljs';
import { agreementKind, commitmentStatus, locale, plainText, type ExistingAgreement, type Locale, type Principal } from '@cm/domain';
import type { CommitmentFilter } from '@cm/read-models';
import { principalOf } from '../access.js';
import type { AppDeps } from '../deps.js';
import { actorOf, correlationIdOf } from '../http-support.js';
import { HttpProblem, problem, sendProblem } from '../problem.js';
import { queriesFor } from '../read-scope.js';
import { COLUMNS, CSV_MEDIA_TYPE, DATA_SHEET, INSTRUCTIONS, XLSX_MEDIA_TYPE, columnLetter, labelOf, labelRow, type SheetRow } from '../sheets/columns.js';
import { applyImport, planImport } from '../sheets/import-plan.js';
import { MAX_ROWS, UnreadableSheet, readCsv, readXlsx } from '../sheets/read-sheet.js';
import { COLUMN_WIDTHS, csvStream, exportRow, xlsxStream } from '../sheets/write-sheet.js';

/** The body an import takes at most (this route only; every other route keeps BODY_LIMIT). */
export const IMPORT_BODY_LIMIT = 10 * 1024 * 1024;
/** Problems one refusal lists at most; `problemsTotal` says how many there were. */
export const MAX_LISTED_PROBLEMS = 5_000;
/** Commitments read per page while an export streams. */
const EXPORT_PAGE = 500;

export type SheetFormat = 'csv' | 'xlsx';

/** The sheet format a list request asks for: `?format=` first, else an Accept naming CSV or XLSX; null: JSON. */
export function sheetFormatOf(request: FastifyRequest, format: string | undefined): SheetFormat | null {
  if (format === 'csv' || format === 'xlsx') return format;
  if (format === 'json') return null;
  const accept = String(request.headers.accept ?? '').toLowerCase();
  if (accept.includes('application/json') || accept === '' || accept.includes('*/*')) return null;
  if (accept.includes(XLSX_MEDIA_TYPE)) return 'xlsx';
  if (accept.includes(CSV_MEDIA_TYPE)) return 'csv';
  return null;
}

/** Every commitment the filter matches, as rows, page after page (no page limit), as `principal` sees them. */
async function* exportRows(deps: AppDeps, principal: Principal, filter: CommitmentFilter, now: string): AsyncGenerator<SheetRow> {
  const queries = queriesFor(deps, principal);
  let cursor: string | undefined;
  for (;;) {
    const page = await queries.listCommitments({ ...filter, limit: EXPORT_PAGE, cursor }, now);
    const docs = await deps.readStore.getAgreements([...new Set(page.items.map((c) => c.agreementId))]);
    for (const c of page.items) {
      const doc = docs.get(c.agreementId);
      if (doc) yield exportRow(c, doc.agreement as ExistingAgreement);
    }
    if (!page.nextCursor) return;
    cursor = page.nextCursor;
  }
}

export function exportCommitments(deps: AppDeps, request: FastifyRequest, reply: FastifyReply, format: SheetFormat, filter: CommitmentFilter): FastifyReply {
  const now = deps.now().toISOString();
  const rows = exportRows(deps, principalOf(request), { ...filter, cursor: undefined }, now);
  const name = `commitments-${now.slice(0, 10)}.${format}`;
  reply.header('content-disposition', `attachment; filename="${name}"`);
  if (format === 'csv') return reply.type(`${CSV_MEDIA_TYPE}; charset=utf-8; header=present`).send(csvStream(rows));
  return reply.type(XLSX_MEDIA_TYPE).send(xlsxStream(rows));
}

const importQuery = z.object({
  dryRun: z.enum(['true', 'false']).default('false').describe('true: check and plan only, record nothing (200); false: apply (201)'),
  fileName: plainText(255).optional().describe("The file's name, recorded with its SHA-256 in every event's metadata"),
});

const planItem = z.object({
  row: z.number().int(), agreementId: z.string(), commitmentId: z.string(),
  outcome: z.enum(['created', 'updated', 'unchanged']),
  actions: z.array(z.enum(['create_agreement', 'add_commitment', 'report_progress', 'implement', 'delay', 'cancel'])),
});
const importAnswer = z.object({
  created: z.object({ agreements: z.number().int(), commitments: z.number().int() }),
  updated: z.number().int().describe('Rows of recorded commitments that lead to a command'),
  unchanged: z.number().int().describe('Rows that match what the ledger holds'),
  rows: z.number().int().describe('Data rows read (header rows not counted)'),
  plan: z.array(planItem),
  dryRun: z.boolean(),
  sha256: z.string().describe("The file's SHA-256, as recorded in the events' metadata"),
  position: z.string().nullable().describe('The position of the last event appended (for `?after=`); null on a dry run or when nothing changed'),
});

const templateQuery = z.object({ format: z.enum(['xlsx', 'csv']).default('xlsx'), lang: locale.default('en') });

const sheetProblem = (status: number, code: string, detail: string) => ({ ...problem(status, code, detail), title: 'Unprocessable spreadsheet' });

export const sheetRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  // The two media types an import takes, as raw bytes; anything else stays 415 (the app's own parser).
  for (const type of [CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE]) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT }, (_request, body, done) => done(null, body));
  }

  app.post('/v1/imports', {
    bodyLimit: IMPORT_BODY_LIMIT,
    schema: {
      tags: ['commitments'], operationId: 'importSheet',
      summary: 'Import a spreadsheet of agreements and commitments (CSV or XLSX), all rows or none',
      description:
        `The body is the file: \`${CSV_MEDIA_TYPE}\` (UTF-8, RFC 4180) or \`${XLSX_MEDIA_TYPE}\`, at most 10 MiB, at most ${MAX_ROWS} rows, ` +
        'in the columns of docs/api.md. Every cell is checked and every row planned against the ledger before anything is recorded; ' +
        'a file with any bad cell answers 422 `invalid_sheet` with `problems: [{sheet,row,column,field,message}]` naming each, and records nothing.',
      querystring: importQuery,
      consumes: [CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE],
      response: { 200: importAnswer, 201: importAnswer },
      problems: { 400: ['invalid_input'], 409: ['agreement_exists'], 412: ['stale_revision'], 413: ['body_too_large'], 415: ['unsupported_media_type'], 422: ['invalid_sheet', 'unreadable_file', 'invalid_header', 'too_many_rows', 'file_too_large_unzipped'] },
    },
  }, async (request, reply) => {
    const body = request.body as unknown;
    const type = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!Buffer.isBuffer(body) || (type !== CSV_MEDIA_TYPE && type !== XLSX_MEDIA_TYPE)) {
      throw new HttpProblem(415, 'unsupported_media_type', `send the file as ${CSV_MEDIA_TYPE} or ${XLSX_MEDIA_TYPE}`);
    }
    let sheet;
    try {
      sheet = type === CSV_MEDIA_TYPE ? readCsv(body) : await readXlsx(body);
    } catch (err) {
      if (err instanceof UnreadableSheet) return sendProblem(reply, sheetProblem(422, err.code, err.message));
      throw err;
    }
    const principal = principalOf(request);
    const now = deps.now().toISOString();
    const planned = await planImport(sheet, { eventStore: deps.eventStore, principal, now });
    if (planned.problems.length) {
      const listed = planned.problems.slice(0, MAX_LISTED_PROBLEMS);
      return sendProblem(reply, {
        ...sheetProblem(422, 'invalid_sheet', `${planned.problems.length} cell(s) of the file cannot be imported; nothing was recorded`),
        problems: listed,
        problemsTotal: planned.problems.length,
      } as ReturnType<typeof problem>);
    }
    const sha256 = createHash('sha256').update(body).digest('hex');
    const dryRun = request.query.dryRun === 'true';
    let position: string | null = null;
    if (!dryRun) {
      position = await applyImport(planned, {
        eventStore: deps.eventStore, principal, sha256,
        ctx: { actor: actorOf(request), occurredAt: now, now, correlationId: correlationIdOf(request), source: { kind: 'import', sha256, fileName: request.query.fileName ?? null } },
      });
      request.log.info({ sha256, rows: planned.summary.rows, updated: planned.summary.updated, created: planned.summary.created }, 'spreadsheet imported');
    }
    return reply.code(dryRun ? 200 : 201).send({ ...planned.summary, dryRun, sha256, position });
  });

  app.get('/v1/imports/template', {
    schema: {
      tags: ['commitments'], operationId: 'getImportTemplate',
      summary: 'An empty import template: both header rows, lists for kind, sector, party and status, and instructions',
      querystring: templateQuery,
      produces: [XLSX_MEDIA_TYPE, CSV_MEDIA_TYPE],
      problems: { 400: ['invalid_input'] },
    },
  }, async (request, reply) => {
    const { format, lang } = request.query;
    reply.header('content-disposition', `attachment; filename="commitments-template-${lang}.${format}"`);
    if (format === 'csv') {
      return reply.type(`${CSV_MEDIA_TYPE}; charset=utf-8; header=present`).send(csvStream((async function* () {})(), { labels: lang }));
    }
    return reply.type(XLSX_MEDIA_TYPE).send(Buffer.from(await templateWorkbook(deps, lang)));
  });
};

/** The template workbook: the data sheet with both header rows and validation lists, a lists sheet, an instructions sheet. */
async function templateWorkbook(deps: AppDeps, lang: Locale): Promise<ArrayBuffer> {
  const wb = new ExcelJS.Workbook();
  const sheet = wb.addWorksheet(DATA_SHEET, { views: [{ state: 'frozen', ySplit: 2 }] });
  sheet.columns = COLUMNS.map((c) => ({ key: c, width: COLUMN_WIDTHS[c] }));
  sheet.addRow([...COLUMNS]);
  sheet.addRow(labelRow(lang));
  sheet.getRow(1).font = { bold: true };
  sheet.getRow(2).font = { italic: true };
  const sectors = [...new Set((await deps.readStore.allAgreements()).map((d) => d.agreement.sector))].sort();
  const lists: Record<string, string[]> = {
    kind: [...agreementKind.options],
    sector: sectors.length ? sectors : ['health', 'energy', 'education', 'agriculture', 'trade'],
    party: ['VEN', 'RUS'],
    status: [...commitmentStatus.options],
  };
  const listSheet = wb.addWorksheet('lists');
  Object.entries(lists).forEach(([name, values], j) => {
    listSheet.getCell(1, j + 1).value = name;
    values.forEach((v, i) => (listSheet.getCell(i + 2, j + 1).value = v));
  });
  const rangeOf = (j: number, n: number) => `lists!$${columnLetter(j)}$2:$${columnLetter(j)}$${n + 1}`;
  const listFor: Record<string, number> = { kind: 0, sector: 1, responsible_party: 2, status: 3 };
  for (const [column, j] of Object.entries(listFor)) {
    const letter = columnLetter(COLUMNS.indexOf(column as (typeof COLUMNS)[number]));
    const n = Object.values(lists)[j]!.length;
    for (let row = 3; row <= 1000; row++) {
      sheet.getCell(`${letter}${row}`).dataValidation = {
        type: 'list', allowBlank: true, formulae: [rangeOf(j, n)], showErrorMessage: column !== 'sector' && column !== 'responsible_party',
        errorTitle: labelOf(lang, column as (typeof COLUMNS)[number]), error: `${lists[Object.keys(lists)[j]!]!.join(', ')}`,
      };
    }
  }
  const help = wb.addWorksheet('instructions');
  help.getColumn(1).width = 120;
  help.addRow([lang === 'es' ? 'Instrucciones' : lang === 'ru' ? 'Инструкции' : 'Instructions']).font = { bold: true };
  for (const line of INSTRUCTIONS[lang]) help.addRow([line]);
  help.addRow([]);
  for (const c of COLUMNS) help.addRow([`${c}: ${labelOf(lang, c)}`]);
  return wb.xlsx.writeBuffer();
}
