// `import <file>`: restores an archive into an EMPTY log (SQLite or PostgreSQL), keeping every id, position,
// recordedAt and hash, so the restored log verifies and projects exactly as the original.
// The bundle is verified in full before anything is written, and the import itself is one
// transaction: a refusal or a failure leaves the log empty.
// Exit codes: 0 imported; 1 refused, nothing written (the log is not empty, or the bundle does
// not verify); 2 the file is unreadable or the import failed (rolled back).
import { createBundleVerifier, readBundleEvents, verifyBundle, type BundleReport, type EventStore, type ImportSummary, type StoredEvent } from '@cm/event-store';

/** A log that restores archives: the SQLite and the PostgreSQL adapters. */
export type ImportTarget = EventStore & { importEvents(events: AsyncIterable<StoredEvent>): Promise<ImportSummary> };
import { bundleLines, cannotRead, isBundle } from './bundle-file.js';
import type { Progress } from './progress.js';
import { describeError } from './verify-command.js';

export type ImportOptions = {
  file: string;
  /** Where the log is, for the messages. */
  target: string;
  /** Whether a log already exists there (an absent one is created only once the bundle verifies). */
  logExists: boolean;
  openStore: () => ImportTarget | Promise<ImportTarget>;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  progress: (label: string) => Progress;
  now: () => Date;
};

/** Thrown when the second read of the file is not the bundle the first one verified. */
class ChangedBetweenReadsError extends Error {}

/**
 * The lines of the second read, verified again as they pass: the file is read twice (verified
 * in full first, then imported), and it may be cut, extended or replaced in between. After the
 * last line, the same header, the same count and the same last hash per stream as the first read,
 * or this throws, inside the import's transaction, which is then rolled back.
 */
async function* checkedAgain(lines: AsyncIterable<string>, first: BundleReport): AsyncGenerator<string> {
  const verifier = createBundleVerifier();
  for await (const line of lines) {
    verifier.line(line);
    yield line;
  }
  const second = verifier.finish();
  const same = second.valid && second.events === first.events && JSON.stringify(second.header) === JSON.stringify(first.header)
    && JSON.stringify(second.streams.map((x) => [x.stream, x.events, x.lastHash])) === JSON.stringify(first.streams.map((x) => [x.stream, x.events, x.lastHash]));
  if (!same) {
    const why = second.valid ? `it holds ${second.events} event lines where the first read held ${first.events}, or other streams` : describeError(second.firstError!);
    throw new ChangedBetweenReadsError(`the file changed between its verification and its import (${why})`);
  }
}

export async function runImport(o: ImportOptions): Promise<number> {
  let store: ImportTarget | null = null;
  try {
    // Refuse before spending a verification on a bundle that could not be imported anyway.
    if (o.logExists) {
      store = await o.openStore();
      const head = await store.headPosition();
      if (head !== null) {
        o.stderr(`refusing to import: the event log at ${o.target} already holds events (up to position ${head}); import only into an empty log\n`);
        return 1;
      }
    }

    let report: BundleReport;
    const verifying = o.progress('verifying');
    let lines = 0;
    try {
      const source = await bundleLines(o.file);
      report = await verifyBundle((async function* () {
        for await (const line of source) {
          lines++;
          verifying.update(Math.max(lines - 1, 0), null);
          yield line;
        }
      })());
    } catch (err) {
      o.stderr(`${cannotRead(o.file, err)}\n`);
      return 2;
    }
    if (!isBundle(o.file, report, o.stderr)) return 2;
    verifying.end(report.events, report.header.events);
    if (!report.valid) {
      o.stderr(`refusing to import: the bundle does not verify: ${describeError(report.firstError!)}; nothing was written\n`);
      return 1;
    }

    const total = report.header.events;
    const started = o.now();
    const importing = o.progress('importing');
    let done = 0;
    async function* counted(events: AsyncIterable<StoredEvent>): AsyncGenerator<StoredEvent> {
      for await (const e of events) {
        yield e;
        done++;
        importing.update(done, total);
      }
    }
    store ??= await o.openStore();
    // The file is opened when the import starts reading it: readLines begins at once, and lines it
    // emits before anything iterates it (while a server transaction is being begun) would be lost.
    const secondRead = async function* () {
      yield* await bundleLines(o.file);
    };
    const summary = await store.importEvents(counted(readBundleEvents(checkedAgain(secondRead(), report))));
    importing.end(done, total);
    const seconds = (o.now().getTime() - started.getTime()) / 1000;
    o.stdout(`imported ${summary.events.toLocaleString('en')} events of ${summary.streams.toLocaleString('en')} streams into ${o.target} in ${seconds.toFixed(1)} s, with their original ids, positions, times and hashes\n`);
    return 0;
  } catch (err) {
    // The log turned non-empty between the check and the transaction, or the file changed
    // between the two reads: either way the transaction was rolled back.
    if (err instanceof Error && (err as { code?: unknown }).code === 'log_not_empty') {
      o.stderr(`refusing to import: ${err.message}\n`);
      return 1;
    }
    if (err instanceof ChangedBetweenReadsError) {
      o.stderr(`\nrefusing to import: ${err.message}; nothing was written\n`);
      return 1;
    }
    o.stderr(`\nimport failed, nothing was written: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  } finally {
    await store?.close();
  }
}
