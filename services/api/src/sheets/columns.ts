// The spreadsheet contract of commitments: its column keys (first row, exactly these), their
// labels in each language (an optional second header row starting with `#`), and the cell
// escaping that keeps exported text from running as a formula (OWASP CSV injection).
import type { Locale } from '@cm/domain';

export const COLUMNS = [
  'agreement_id', 'agreement_title', 'kind', 'sector', 'parties', 'signed_at', 'session_name', 'session_date',
  'commitment_id', 'commitment_title', 'responsible_party', 'responsible_institution', 'due_date', 'status', 'progress', 'note',
] as const;
export type Column = (typeof COLUMNS)[number];
export type SheetRow = Record<Column, string | number | Date | null>;

export const CSV_MEDIA_TYPE = 'text/csv';
export const XLSX_MEDIA_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

/** The sheet holding the rows, in workbooks this service writes; an import reads it, or else the first sheet. */
export const DATA_SHEET = 'commitments';

const LABELS: Record<Locale, Record<Column, string>> = {
  en: {
    agreement_id: 'Agreement id', agreement_title: 'Agreement title', kind: 'Kind', sector: 'Sector', parties: 'Parties (VEN;RUS)',
    signed_at: 'Signed on', session_name: 'Session', session_date: 'Session date', commitment_id: 'Commitment id',
    commitment_title: 'Commitment', responsible_party: 'Responsible party', responsible_institution: 'Responsible institution',
    due_date: 'Due date', status: 'Status', progress: 'Progress (%)', note: 'Note',
  },
  es: {
    agreement_id: 'Id del acuerdo', agreement_title: 'Título del acuerdo', kind: 'Tipo', sector: 'Sector', parties: 'Partes (VEN;RUS)',
    signed_at: 'Firmado el', session_name: 'Sesión', session_date: 'Fecha de la sesión', commitment_id: 'Id del compromiso',
    commitment_title: 'Compromiso', responsible_party: 'Parte responsable', responsible_institution: 'Institución responsable',
    due_date: 'Fecha límite', status: 'Estado', progress: 'Avance (%)', note: 'Nota',
  },
  ru: {
    agreement_id: 'Код соглашения', agreement_title: 'Название соглашения', kind: 'Вид', sector: 'Отрасль', parties: 'Стороны (VEN;RUS)',
    signed_at: 'Дата подписания', session_name: 'Сессия', session_date: 'Дата сессии', commitment_id: 'Код обязательства',
    commitment_title: 'Обязательство', responsible_party: 'Ответственная сторона', responsible_institution: 'Ответственное ведомство',
    due_date: 'Срок', status: 'Статус', progress: 'Выполнение (%)', note: 'Примечание',
  },
};

/** The second header row: labels in `lang`, the first starting with `#` so an import skips the row. */
export function labelRow(lang: Locale): string[] {
  return COLUMNS.map((c, i) => (i === 0 ? `# ${LABELS[lang][c]}` : LABELS[lang][c]));
}

export const labelOf = (lang: Locale, c: Column) => LABELS[lang][c];

/** A1-style letter of a 0-based column index (A..Z, AA..). */
export function columnLetter(index: number): string {
  let n = index + 1;
  let s = '';
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(65 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

// OWASP: a cell beginning with one of these is read by spreadsheet programs as a formula (or,
// for tab and CR, hides one); a leading single quote makes it text.
const FORMULA_START = /^[=+\-@\t\r]/;

/** An exported text cell that no spreadsheet program runs as a formula. */
export function neutralize(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}

/** An imported text cell as it was before `neutralize` (the quote this service added comes off). */
export function unneutralize(text: string): string {
  return text.startsWith("'") && FORMULA_START.test(text.slice(1)) ? text.slice(1) : text;
}

/** The words of the instructions sheet of the template. */
export const INSTRUCTIONS: Record<Locale, string[]> = {
  en: [
    'One row per commitment; the agreement columns repeat on each of its rows.',
    'Row 1 holds the column keys: keep them as they are. Row 2 (starting with #) holds labels and is skipped.',
    'parties: ISO 3166-1 alpha-3 codes separated by ";" (VEN;RUS). Dates: YYYY-MM-DD or date cells.',
    'status and progress may be empty. progress: a whole number 0-100.',
    'due_date is empty for a recorded commitment whose date waits for entry into force: leave it so. A new commitment needs a due_date.',
    'status implemented, delayed (due_date is the new date, note the reason) or cancelled (note the reason) records that change.',
    'Titles, responsible party and institution of recorded commitments change only through corrections, not through an import.',
    'Send the file to POST /v1/imports?dryRun=true first: every bad cell is named before anything is recorded.',
  ],
  es: [
    'Una fila por compromiso; las columnas del acuerdo se repiten en cada una de sus filas.',
    'La fila 1 contiene las claves de columna: no las cambie. La fila 2 (empieza con #) contiene etiquetas y se omite.',
    'parties: códigos ISO 3166-1 alfa-3 separados por ";" (VEN;RUS). Fechas: AAAA-MM-DD o celdas de fecha.',
    'status y progress pueden quedar vacíos. progress: un número entero de 0 a 100.',
    'due_date queda vacío en un compromiso registrado cuya fecha espera la entrada en vigor: déjelo así. Un compromiso nuevo necesita due_date.',
    'status implemented, delayed (due_date es la nueva fecha, note el motivo) o cancelled (note el motivo) registra ese cambio.',
    'Los títulos, la parte y la institución responsables de compromisos registrados solo cambian mediante correcciones, no por importación.',
    'Envíe primero el archivo a POST /v1/imports?dryRun=true: se indica cada celda errónea antes de registrar nada.',
  ],
  ru: [
    'Одна строка на обязательство; столбцы соглашения повторяются в каждой его строке.',
    'Строка 1 содержит ключи столбцов: не меняйте их. Строка 2 (начинается с #) содержит подписи и пропускается.',
    'parties: коды ISO 3166-1 alpha-3 через ";" (VEN;RUS). Даты: ГГГГ-ММ-ДД или ячейки с датой.',
    'status и progress могут быть пустыми. progress: целое число от 0 до 100.',
    'due_date пуст у записанного обязательства, срок которого ждёт вступления в силу: оставьте так. Новому обязательству нужен due_date.',
    'status implemented, delayed (due_date — новый срок, note — причина) или cancelled (note — причина) записывает это изменение.',
    'Названия, ответственная сторона и ведомство записанных обязательств меняются только исправлениями, не импортом.',
    'Сначала отправьте файл в POST /v1/imports?dryRun=true: каждая ошибочная ячейка будет названа до какой-либо записи.',
  ],
};
