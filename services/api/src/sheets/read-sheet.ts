// Reading an uploaded spreadsheet into rows of text, within bounds: csv-parse for CSV, exceljs
// for XLSX, after yauzl has inflated every zip entry once with a ceiling on the bytes it yields
// (a zip bomb stops there, whatever sizes its directory declares). A formula cell is read as the
// value the program that saved it computed (its cached result), never evaluated; one without a
// cached result is refused. What cannot be read at all is an UnreadableSheet (422, nothing read).
import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import yauzl from 'yauzl';
import { COLUMNS, DATA_SHEET, columnLetter, unneutralize, type Column } from './columns.js';

/** Data rows an import takes at most (header rows not counted). */
export const MAX_ROWS = 20_000;
/** Characters one cell may hold (Excel's own ceiling); longer cells are named as problems. */
export const MAX_CELL_CHARS = 32_767;
/** Bytes the entries of an XLSX file may inflate to, together. */
export const MAX_UNZIPPED_BYTES = 100 * 1024 * 1024;
/** Entries an XLSX file may hold. */
const MAX_ZIP_ENTRIES = 2_000;

export class UnreadableSheet extends Error {
  constructor(readonly code: 'unreadable_file' | 'too_many_rows' | 'file_too_large_unzipped' | 'invalid_header', message: string) {
    super(message);
  }
}

/** One data row: its spreadsheet row number (1-based, as a program shows it) and its cells by column. */
export type RawRow = { row: number; cells: Partial<Record<Column, string>>; problems: CellProblem[] };
export type CellProblem = { column: string; field: string; message: string };
export type RawSheet = { sheet: string; rows: RawRow[] };

type Cell = string | { formulaWithoutResult: true } | { tooLong: true };

function checkHeader(header: readonly Cell[]): void {
  const keys = header.map((h) => (typeof h === 'string' ? h.trim() : ''));
  while (keys.length > 0 && keys.at(-1) === '') keys.pop();
  const expected = COLUMNS.join(',');
  if (keys.join(',') !== expected) {
    const missing = COLUMNS.filter((c) => !keys.includes(c));
    const unknown = keys.filter((k) => !(COLUMNS as readonly string[]).includes(k));
    throw new UnreadableSheet(
      'invalid_header',
      `the first row must hold exactly these column keys, in this order: ${COLUMNS.join(', ')}` +
        (missing.length ? `; missing: ${missing.join(', ')}` : '') +
        (unknown.length ? `; unknown: ${unknown.slice(0, 10).map((u) => u.slice(0, 40)).join(', ')}` : ''),
    );
  }
}

function toRows(sheet: string, table: Cell[][]): RawSheet {
  if (table.length === 0) throw new UnreadableSheet('invalid_header', 'the file is empty: the first row must hold the column keys');
  checkHeader(table[0]!);
  const rows: RawRow[] = [];
  for (let i = 1; i < table.length; i++) {
    const line = table[i]!;
    if (i === 1 && typeof line[0] === 'string' && line[0].trimStart().startsWith('#')) continue;
    if (line.every((c) => c === '' )) continue;
    const cells: RawRow['cells'] = {};
    const problems: CellProblem[] = [];
    COLUMNS.forEach((c, j) => {
      const v = line[j] ?? '';
      if (typeof v !== 'string') {
        problems.push({ column: columnLetter(j), field: c, message: 'formulaWithoutResult' in v ? 'is a formula without a saved value; save the file with its values, or type the value' : `is longer than ${MAX_CELL_CHARS} characters` });
        return;
      }
      const text = unneutralize(v.trim());
      if (text !== '') cells[c] = text;
    });
    for (let j = COLUMNS.length; j < line.length; j++) {
      if (line[j] !== '') problems.push({ column: columnLetter(j), field: columnLetter(j), message: 'is outside the columns of the contract; leave it empty' });
    }
    rows.push({ row: i + 1, cells, problems });
    if (rows.length > MAX_ROWS) throw new UnreadableSheet('too_many_rows', `the file holds more than ${MAX_ROWS} rows; split it into files of at most ${MAX_ROWS} rows`);
  }
  return { sheet, rows };
}

const boundCell = (s: string): Cell => (s.length > MAX_CELL_CHARS ? { tooLong: true } : s);

export function readCsv(body: Buffer): RawSheet {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new UnreadableSheet('unreadable_file', 'the file is not UTF-8 text: send CSV saved as UTF-8 (Excel: "CSV UTF-8"), or the .xlsx file');
  }
  // A NUL does not occur in text: this is a binary file sent as CSV.
  if (text.includes('\u0000')) throw new UnreadableSheet('unreadable_file', 'the file is not CSV text (it holds NUL bytes); send a CSV or an .xlsx file');
  let table: string[][];
  try {
    table = parse(text, {
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
      // Header, label row, and one past the limit: enough to know the file is too long.
      to_line: MAX_ROWS + 3,
      // One record must fit what 16 cells of the largest size take.
      max_record_size: MAX_CELL_CHARS * 17,
    }) as string[][];
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new UnreadableSheet('unreadable_file', `the file is not valid CSV (RFC 4180): ${message.slice(0, 300)}`);
  }
  if (table.length > MAX_ROWS + 2) throw new UnreadableSheet('too_many_rows', `the file holds more than ${MAX_ROWS} rows; split it into files of at most ${MAX_ROWS} rows`);
  return toRows('csv', table.map((r) => r.map(boundCell)));
}

/** Inflates every entry once, counting: throws before the total passes MAX_UNZIPPED_BYTES. */
function checkZip(body: Buffer): Promise<void> {
  const unreadable = (why: string) => new UnreadableSheet('unreadable_file', `the file is not a readable .xlsx workbook (${why}); save it again as Excel Workbook (.xlsx)`);
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(body, { lazyEntries: true, validateEntrySizes: true, strictFileNames: false }, (err, zip) => {
      if (err || !zip) return reject(unreadable(err?.message ?? 'not a zip archive'));
      let total = 0;
      let entries = 0;
      const fail = (e: Error) => {
        zip.close();
        reject(e);
      };
      zip.on('error', (e: Error) => fail(unreadable(e.message)));
      zip.on('end', () => resolve());
      zip.on('entry', (entry: yauzl.Entry) => {
        if (++entries > MAX_ZIP_ENTRIES) return fail(unreadable(`more than ${MAX_ZIP_ENTRIES} entries`));
        if (total + entry.uncompressedSize > MAX_UNZIPPED_BYTES) return fail(tooBig());
        if (/\/$/.test(entry.fileName)) return zip.readEntry();
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return fail(unreadable(e?.message ?? 'an entry cannot be read'));
          stream.on('data', (chunk: Buffer) => {
            total += chunk.length;
            if (total > MAX_UNZIPPED_BYTES) {
              stream.destroy();
              fail(tooBig());
            }
          });
          stream.on('error', (se: Error) => fail(unreadable(se.message)));
          stream.on('end', () => zip.readEntry());
        });
      });
      zip.readEntry();
    });
  });
}

const tooBig = () => new UnreadableSheet('file_too_large_unzipped', `the workbook inflates to more than ${MAX_UNZIPPED_BYTES / 1024 / 1024} MiB; this is not a sheet of commitments`);

function cellText(value: ExcelJS.CellValue): Cell {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return boundCell(value);
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (value instanceof Date) {
    // A date cell: exceljs gives the day at midnight UTC; a date-time keeps its day.
    return Number.isNaN(value.getTime()) ? '' : value.toISOString().slice(0, 10);
  }
  if (typeof value === 'object') {
    if ('formula' in value || 'sharedFormula' in value) {
      const result = (value as { result?: ExcelJS.CellValue }).result;
      if (result === undefined || result === null || (typeof result === 'object' && 'error' in (result as object))) return { formulaWithoutResult: true };
      return cellText(result);
    }
    if ('richText' in value) return boundCell(value.richText.map((r) => r.text).join(''));
    if ('text' in value && typeof (value as { text: unknown }).text === 'string') return boundCell((value as { text: string }).text);
    if ('error' in value) return String((value as { error: string }).error);
  }
  return String(value);
}

export async function readXlsx(body: Buffer): Promise<RawSheet> {
  await checkZip(body);
  const workbook = new ExcelJS.Workbook();
  try {
    await workbook.xlsx.load(body as unknown as ArrayBuffer);
  } catch (err) {
    throw new UnreadableSheet('unreadable_file', `the file is not a readable .xlsx workbook (${(err instanceof Error ? err.message : String(err)).slice(0, 200)})`);
  }
  const sheet = workbook.getWorksheet(DATA_SHEET) ?? workbook.worksheets[0];
  if (!sheet) throw new UnreadableSheet('invalid_header', 'the workbook has no sheet');
  if (sheet.rowCount > MAX_ROWS + 2 && sheet.actualRowCount > MAX_ROWS + 2) {
    throw new UnreadableSheet('too_many_rows', `the sheet holds more than ${MAX_ROWS} rows; split it into files of at most ${MAX_ROWS} rows`);
  }
  const table: Cell[][] = [];
  sheet.eachRow({ includeEmpty: true }, (row, n) => {
    const cells: Cell[] = [];
    const count = Math.max(row.cellCount, 0);
    for (let j = 1; j <= count; j++) cells.push(cellText(row.getCell(j).value));
    table[n - 1] = cells;
  });
  for (let i = 0; i < table.length; i++) table[i] ??= [];
  return toRows(sheet.name, table);
}
