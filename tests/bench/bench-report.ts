// How `pnpm bench` reports: the machine it ran on, and the rows of every suite as one table
// (plain text for the terminal, Markdown for the README's "Performance" section).
import { readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import type { BenchRow } from './bench-kit.js';

export type Machine = {
  cpuModel: string;
  cores: number;
  totalMemoryBytes: number;
  totalMemoryGiB: number;
  node: string;
  os: string;
  arch: string;
  /** The file system of the temporary folder the logs live in: fsync costs differ enormously. */
  tmpFileSystem: string;
  loadAverage: number[];
};

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemoryBytes: os.totalmem(),
    totalMemoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    node: process.version,
    os: `${os.type()} ${os.release()} (${process.platform})`,
    arch: process.arch,
    tmpFileSystem: fileSystemOf(os.tmpdir()),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

export const machineLine = (m: Machine) =>
  `${m.cores} x ${m.cpuModel}, ${m.totalMemoryGiB} GiB, node ${m.node}, ${m.os} ${m.arch}, temporary files on ${m.tmpFileSystem}`;

function fileSystemOf(dir: string): string {
  try {
    const real = realpathSync(dir);
    let best = { mount: '', type: 'unknown' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, type] = line.split(' ');
      if (!mount || !type) continue;
      if ((real === mount || real.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length >= best.mount.length) best = { mount, type };
    }
    return `${best.type} (${best.mount})`;
  } catch {
    return 'unknown';
  }
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return `- ${unit}`;
  if (unit === 'ms') return `${value < 1 ? value.toFixed(3) : value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
  const abs = Math.abs(value);
  const digits = abs >= 100 || Number.isInteger(value) ? 0 : abs >= 10 ? 1 : 2;
  return `${value.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

export function formatRatio(ratio: number | null): string {
  if (ratio === null || !Number.isFinite(ratio)) return '-';
  return `${ratio.toFixed(ratio < 0.1 ? 3 : ratio < 10 ? 2 : 1)}x`;
}

const HEADER = ['group', 'measurement', 'value', 'baseline (same run)', 'ratio', 'target'];

function cells(row: BenchRow): string[] {
  return [
    row.group,
    row.name,
    formatValue(row.value, row.unit),
    row.baseline ? `${formatValue(row.baseline.value, row.baseline.unit)} (${row.baseline.name})` : '-',
    formatRatio(row.ratio),
    row.target ? `${row.target.text}: ${row.target.met ? 'met' : 'NOT met'}` : '',
  ];
}

/** Fixed-width columns for the terminal; ratio notes are listed under the table. */
export function renderText(rows: BenchRow[]): string {
  const body = rows.map(cells);
  const widths = HEADER.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const numeric = new Set([2, 4]);
  const line = (c: string[]) => c.map((x, i) => (numeric.has(i) ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(HEADER), widths.map((w) => '-'.repeat(w)).join('  ')];
  let group = '';
  for (const [i, r] of body.entries()) {
    if (rows[i]!.group !== group && group !== '') out.push('');
    group = rows[i]!.group;
    out.push(line(r));
  }
  const notes = ratioNotes(rows);
  if (notes.length > 0) out.push('', ...notes.map((n) => `ratio: ${n}`));
  return `${out.join('\n')}\n`;
}

/** A Markdown table (pipes in cells escaped), with the ratio notes as a list below it. */
export function renderMarkdown(rows: BenchRow[], caption?: string): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  const out: string[] = [];
  if (caption) out.push(caption, '');
  out.push(`| ${HEADER.join(' | ')} |`, `| ${HEADER.map(() => '---').join(' | ')} |`);
  for (const r of rows) out.push(`| ${cells(r).map(esc).join(' | ')} |`);
  const notes = ratioNotes(rows);
  if (notes.length > 0) out.push('', ...notes.map((n) => `- ratio: ${n}`));
  return `${out.join('\n')}\n`;
}

function ratioNotes(rows: BenchRow[]): string[] {
  const notes = new Map<string, string[]>();
  for (const r of rows) {
    if (!r.ratioNote) continue;
    const groups = notes.get(r.ratioNote) ?? [];
    if (!groups.includes(r.group)) groups.push(r.group);
    notes.set(r.ratioNote, groups);
  }
  const plain = rows.some((r) => r.ratio !== null && !r.ratioNote);
  return [...(plain ? ['value / baseline, unless noted'] : []), ...[...notes].map(([note, groups]) => `${note} (${groups.join(', ')})`)];
}
