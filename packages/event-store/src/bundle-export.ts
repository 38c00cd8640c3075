// Bundles read from a live log through the EventStore port (any adapter). Each export is a
// consistent cut: the header is computed first and the events streamed afterwards stop exactly
// at it, so appends that land while a large export is being written are left out rather than
// half-included.
import { comparePositions, type EventStore, type Position, type StoredEvent } from './event-store.js';
import { bundleHeader, writeBundle, type BundleHeader } from './bundle.js';

export type BundleExport = {
  header: BundleHeader;
  /** The bundle's lines, newline-terminated, read from the log as they are pulled. */
  lines: AsyncGenerator<string>;
};

const PAGE = 1000;

async function eventAt(store: EventStore, stream: string, revision: number): Promise<StoredEvent> {
  const [e] = await store.readStream(stream, { fromRevision: revision, toRevision: revision });
  // Logs are append-only: an event seen once is there for good.
  if (!e) throw new Error(`stream ${stream} has no revision ${revision}, though the log said so a moment ago`);
  return e;
}

async function* streamEvents(store: EventStore, stream: string, toRevision: number): AsyncGenerator<StoredEvent> {
  for (let from = 0; from <= toRevision; from += PAGE) {
    yield* await store.readStream(stream, { fromRevision: from, toRevision: Math.min(toRevision, from + PAGE - 1) });
  }
}

/** One stream, in revision order; null when the stream does not exist. */
export async function exportStream(store: EventStore, stream: string, createdAt: string): Promise<BundleExport | null> {
  const revision = await store.streamRevision(stream);
  if (revision < 0) return null;
  const last = await eventAt(store, stream, revision);
  const header = bundleHeader('stream', createdAt, [{ stream, revision, lastHash: last.hash }]);
  return { header, lines: writeBundle(header, streamEvents(store, stream, revision)) };
}

/**
 * The last revision of `stream` at or before `cut`, or -1. Positions grow with revisions, so a
 * stream that moved past the cut while the header was being built is searched by halves.
 */
async function revisionAtCut(store: EventStore, stream: string, cut: Position): Promise<StoredEvent | null> {
  const head = await store.streamRevision(stream);
  if (head < 0) return null;
  const last = await eventAt(store, stream, head);
  if (comparePositions(last.position, cut) <= 0) return last;
  let lo = 0;
  let hi = head - 1;
  let found: StoredEvent | null = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const e = await eventAt(store, stream, mid);
    if (comparePositions(e.position, cut) <= 0) {
      found = e;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Every stream, in global order (the archive): the log as it stood at its head position when called. */
export async function exportArchive(store: EventStore, createdAt: string): Promise<BundleExport> {
  const cut = await store.headPosition();
  const streams: BundleHeader['streams'] = [];
  if (cut !== null) {
    for (const stream of await store.listStreams()) {
      const last = await revisionAtCut(store, stream, cut);
      if (last) streams.push({ stream, revision: last.revision, lastHash: last.hash });
    }
  }
  const header = bundleHeader('global', createdAt, streams);
  async function* events(): AsyncGenerator<StoredEvent> {
    if (cut === null) return;
    let after: Position | null = null;
    for (;;) {
      const page = await store.readAll({ after, limit: PAGE });
      for (const e of page) {
        if (comparePositions(e.position, cut) > 0) return;
        yield e;
      }
      // Only an empty page ends the log: an adapter may answer short pages before the end.
      if (page.length === 0) return;
      after = page.at(-1)!.position;
    }
  }
  return { header, lines: writeBundle(header, events()) };
}
