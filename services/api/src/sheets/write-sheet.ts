// Writing commitment rows as CSV (UTF-8 with BOM, RFC 4180, CRLF) or XLSX, streamed: rows are
// written as they come, so an export of every commitment never holds the whole file in memory.
import { PassThrough, Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import ExcelJS from 'exceljs';
import type { ExistingAgreement, Locale } from '@cm/domain';
import type { CommitmentListItem } from '@cm/read-models';
import { COLUMNS, DATA_SHEET, labelRow, neutralize, type Column, type SheetRow } from './columns.js';

const DATE_COLUMNS: ReadonlySet<Column> = new Set(['signed_at', 'session_date', 'due_date']);

/** The note an export shows: the reason of a cancellation or of the last delay, which an import then finds unchanged. */
function noteOf(c: CommitmentListItem): string | null {
  if (c.status === 'cancelled') return c.cancellationReason;
  if (c.status === 'delayed') return c.delays.at(-1)?.reason ?? null;
  return null;
}

export function exportRow(c: CommitmentListItem, a: ExistingAgreement): SheetRow {
  return {
    agreement_id: a.id,
    agreement_title: a.title,
    kind: a.kind,
    sector: a.sector,
    parties: a.parties.join(';'),
    signed_at: a.signedAt,
    session_name: a.session?.name ?? null,
    session_date: a.session?.date ?? null,
    commitment_id: c.id,
    commitment_title: c.title,
    responsible_party: c.responsible.party,
    responsible_institution: c.responsible.institution,
    due_date: c.dueDate,
    status: c.status,
    progress: c.progress,
    note: noteOf(c),
  };
}

const textOf = (v: SheetRow[Column]) => (v === null ? '' : v instanceof Date ? v.toISOString().slice(0, 10) : typeof v === 'number' ? String(v) : neutralize(v));

/** CSV as Excel opens it: a BOM so UTF-8 (Spanish, Cyrillic) is read as such, quotes where RFC 4180 needs them, CRLF. */
export function csvStream(rows: AsyncIterable<SheetRow>, options: { labels?: Locale } = {}): Readable {
  const out = stringify({ bom: true, record_delimiter: 'windows', quoted_match: /^\s|\s$/ });
  void (async () => {
    try {
      await write(out, [...COLUMNS]);
      if (options.labels) await write(out, labelRow(options.labels));
      for await (const row of rows) await write(out, COLUMNS.map((c) => textOf(row[c])));
      out.end();
    } catch (err) {
      out.destroy(err as Error);
    }
  })();
  return out;
}

function write(stream: NodeJS.WritableStream & { write(chunk: unknown): boolean }, chunk: unknown): Promise<void> {
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => stream.once('drain', () => resolve()));
}

/** Exceljs' date cells are UTC instants; a calendar day is its midnight UTC. */
const dateCell = (iso: string) => new Date(`${iso}T00:00:00Z`);

export const COLUMN_WIDTHS: Record<Column, number> = {
  agreement_id: 28, agreement_title: 40, kind: 12, sector: 14, parties: 14, signed_at: 12, session_name: 16, session_date: 12,
  commitment_id: 28, commitment_title: 48, responsible_party: 10, responsible_institution: 36, due_date: 12, status: 12, progress: 9, note: 40,
};

/** The cell an XLSX export holds: dates as date cells, progress as a number, text neutralised. */
export function xlsxCell(column: Column, v: SheetRow[Column]): string | number | Date | null {
  if (v === null) return null;
  if (typeof v === 'string' && DATE_COLUMNS.has(column)) return dateCell(v);
  if (typeof v === 'string') return neutralize(v);
  return v;
}

/** An XLSX workbook with one sheet of rows, streamed through exceljs' streaming writer. */
export function xlsxStream(rows: AsyncIterable<SheetRow>, options: { labels?: Locale } = {}): Readable {
  const out = new PassThrough();
  const workbook = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useStyles: true, useSharedStrings: false });
  const sheet = workbook.addWorksheet(DATA_SHEET, { views: [{ state: 'frozen', ySplit: options.labels ? 2 : 1 }] });
  sheet.columns = COLUMNS.map((c) => ({ key: c, width: COLUMN_WIDTHS[c], ...(DATE_COLUMNS.has(c) ? { style: { numFmt: 'yyyy-mm-dd' } } : {}) }));
  void (async () => {
    try {
      sheet.addRow([...COLUMNS]).commit();
      if (options.labels) sheet.addRow(labelRow(options.labels)).commit();
      for await (const row of rows) {
        const r = sheet.addRow(COLUMNS.map((c) => xlsxCell(c, row[c])));
        r.commit();
      }
      sheet.commit();
      await workbook.commit();
    } catch (err) {
      out.destroy(err as Error);
    }
  })();
  return out;
}
