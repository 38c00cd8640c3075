// `export [--out file]`: the archive of every stream, in global order, as an NDJSON bundle
// (format: bundle.ts in @cm/event-store). The bundle goes to the file or to stdout; progress
// and the summary go to stderr, so `export > file` stays a clean bundle.
// Exit codes: 0 written, 2 the export failed (no file is left under the name asked for).
import type { Writable } from 'node:stream';
import { exportArchive, type EventStore } from '@cm/event-store';
import { writeLinesTo, writeLinesToFile } from './bundle-file.js';
import type { Progress } from './progress.js';

export type ExportOptions = {
  eventStore: EventStore;
  /** Where the log is, for the messages. */
  source: string;
  out: string | null;
  stdout: Writable;
  stderr: (s: string) => void;
  progress: (label: string) => Progress;
  now: () => Date;
};

export async function runExport(o: ExportOptions): Promise<number> {
  const started = o.now();
  try {
    const bundle = await exportArchive(o.eventStore, started.toISOString());
    const { events: total, streams } = { events: bundle.header.events, streams: bundle.header.streams.length };
    o.stderr(`exporting ${total.toLocaleString('en')} events of ${streams.toLocaleString('en')} streams from ${o.source}${o.out ? ` to ${o.out}` : ''}\n`);
    const progress = o.progress('exporting');
    let done = -1; // the header is the first line
    async function* counted(): AsyncGenerator<string> {
      for await (const line of bundle.lines) {
        done++;
        if (done > 0) progress.update(done, total);
        yield line;
      }
    }
    if (o.out) await writeLinesToFile(counted(), o.out);
    else await writeLinesTo(counted(), o.stdout);
    progress.end(Math.max(done, 0), total);
    const seconds = (o.now().getTime() - started.getTime()) / 1000;
    o.stderr(`exported ${total.toLocaleString('en')} events of ${streams.toLocaleString('en')} streams in global order${o.out ? ` to ${o.out}` : ''} in ${seconds.toFixed(1)} s\n`);
    return 0;
  } catch (err) {
    o.stderr(`\nexport failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
}
