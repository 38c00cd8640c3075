// Bundle files on disk: read line by line (a bundle may be larger than memory) and written
// beside their final name first, so an interrupted export never leaves a file under the name an
// operator asked for that looks complete.
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BundleReport } from '@cm/event-store';

/** The file cannot be opened or read as text at all (as opposed to a bundle that fails to verify). */
export class UnreadableFileError extends Error {}

/** Why a bundle file could not be read at all: opened, or read half-way (an I/O error is as unreadable as a missing file). */
export const cannotRead = (file: string, err: unknown) =>
  err instanceof UnreadableFileError ? err.message : `cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`;

/** True when the file held a bundle header; otherwise says why through `say`. The commands answer 2 for either refusal. */
export function isBundle(file: string, report: BundleReport, say: (line: string) => void): report is BundleReport & { header: NonNullable<BundleReport['header']> } {
  if (report.header !== null) return true;
  say(`${file} is not a readable bundle: ${report.firstError!.reason}\n`);
  return false;
}

const reasonOf = (err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  return e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e instanceof Error ? e.message : String(err);
};

/** The lines of a file, without their newlines; a last line without a newline is still yielded. */
export async function bundleLines(file: string): Promise<AsyncIterable<string>> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new UnreadableFileError(`cannot read ${file}: not a regular file`);
    const handle = await open(file, 'r');
    // readline also takes \r\n as one break, so a bundle that went through Windows still splits alike.
    return handle.readLines({ encoding: 'utf8' });
  } catch (err) {
    if (err instanceof UnreadableFileError) throw err;
    throw new UnreadableFileError(`cannot read ${file}: ${reasonOf(err)}`);
  }
}

// Lines joined into chunks of about this many characters: one write per line would cost more
// than producing the line does.
const CHUNK = 64 * 1024;

async function* chunked(lines: AsyncIterable<string>): AsyncGenerator<string> {
  let buffer = '';
  for await (const line of lines) {
    buffer += line;
    if (buffer.length >= CHUNK) {
      yield buffer;
      buffer = '';
    }
  }
  if (buffer) yield buffer;
}

/** Writes newline-terminated lines to `out` (via `<out>.partial`, renamed when complete). */
export async function writeLinesToFile(lines: AsyncIterable<string>, out: string): Promise<void> {
  const partial = `${out}.partial`;
  try {
    await pipeline(Readable.from(chunked(lines)), createWriteStream(partial));
    await rename(partial, out);
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
}

/** Writes newline-terminated lines to a stream the caller keeps open (stdout). */
export async function writeLinesTo(lines: AsyncIterable<string>, dest: Writable): Promise<void> {
  await pipeline(Readable.from(chunked(lines)), dest, { end: false });
}
