// `verify <file>`: checks a bundle offline, with no configuration, server or database: every
// hash is recomputed, so an auditor needs only this command and the file. Prints one line per
// stream and the first bad revision.
// Exit codes: 0 valid, 1 invalid (a bundle, but altered, cut short or malformed), 2 unreadable
// (no such file, or not a bundle of this format and version at all).
import { verifyBundle, type BundleError, type BundleReport } from '@cm/event-store';
import { bundleLines, cannotRead, isBundle } from './bundle-file.js';

export const describeError = (e: BundleError) => {
  const where = e.stream === null ? '' : `${e.stream}${e.revision === null ? '' : ` revision ${e.revision}`}`;
  const line = e.line === null ? '' : `${where ? ', ' : ''}line ${e.line}`;
  return `${where || line ? `${where}${line}: ` : ''}${e.reason}`;
};

/** "hash scheme 2", or "hash schemes 1 (3 events), 2 (5 events)" for a stream that moved to a newer scheme. */
const schemesOf = (schemes: Record<string, number>) => {
  const used = Object.keys(schemes).sort();
  return used.length === 1 ? `hash scheme ${used[0]}` : `hash schemes ${used.map((k) => `${k} (${schemes[k]} events)`).join(', ')}`;
};

export function reportLines(file: string, r: BundleReport): string[] {
  const h = r.header!;
  const out = [`${file}: bundle of ${h.streams.length} streams, ${h.events} events, ${h.order} order, created ${h.createdAt}`];
  for (const s of r.streams) {
    out.push(s.valid
      ? `  ${s.stream}: valid, ${s.events} events (${schemesOf(s.schemes)}), last hash ${s.lastHash ?? '-'}`
      : `  ${s.stream}: INVALID from revision ${s.firstInvalidRevision}, ${s.events} events in the bundle`);
  }
  out.push(r.valid ? `valid: every hash recomputed and every chain intact` : `INVALID: ${describeError(r.firstError!)}`);
  return out;
}

export async function runVerify(o: { file: string; stdout: (s: string) => void; stderr: (s: string) => void }): Promise<number> {
  let report: BundleReport;
  try {
    report = await verifyBundle(await bundleLines(o.file));
  } catch (err) {
    o.stderr(`${cannotRead(o.file, err)}\n`);
    return 2;
  }
  if (!isBundle(o.file, report, o.stderr)) return 2;
  for (const line of reportLines(o.file, report)) o.stdout(`${line}\n`);
  return report.valid ? 0 : 1;
}
