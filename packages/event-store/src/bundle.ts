// The portable bundle: NDJSON that an auditor verifies with nothing but `verifyBundle` (no
// server, no database). Line 1 is a header; every further line is one stored event with its
// hashes. Order is stated in the header: `stream` bundles (one stream's export) list events in
// revision order; `global` bundles (the archive of every stream) list them in log order,
// positions ascending, so importing them in file order rebuilds the very same log.
// The hash covers an event's content (prevHash, type, data, metadata) and, under hash scheme 2,
// its stream, id and revision too (event-hash.mjs); each line says its scheme (`hashScheme`).
// Position is checked for consistency here, but no hash covers it.
import { z } from 'zod';
import { POSITION_PATTERN, type StoredEvent } from './event-store.js';
import { chainFault, hashScheme, type HashScheme } from './hash-chain.js';

export const BUNDLE_FORMAT = 'commitment-monitor-bundle';
export const BUNDLE_VERSION = 1;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const bundleHeaderSchema = z.object({
  format: z.literal(BUNDLE_FORMAT),
  version: z.literal(BUNDLE_VERSION),
  createdAt: z.string(),
  order: z.enum(['stream', 'global']),
  // Each stream's last revision and hash: a stream cut short at its end still has a valid chain,
  // so only this says lines are missing; and lastHash is what an auditor compares with a copy
  // kept elsewhere (an earlier export, a published anchor).
  streams: z.array(z.object({ stream: z.string().min(1), revision: z.number().int().min(0), lastHash: sha256Hex })),
  events: z.number().int().min(0),
});
export type BundleHeader = z.infer<typeof bundleHeaderSchema>;

export const bundleEventSchema = z.object({
  stream: z.string().min(1),
  revision: z.number().int().min(0),
  position: z.string().regex(POSITION_PATTERN),
  id: z.string().min(1),
  type: z.string().min(1),
  data: z.unknown(),
  // Loose: the hash covers the metadata exactly as stored, so a key this version does not know
  // must survive parsing, or a genuine event would fail to verify.
  metadata: z.looseObject({
    actor: z.string(),
    occurredAt: z.string(),
    correlationId: z.string(),
    causationId: z.string().optional(),
    recordedAt: z.string(),
  }),
  /**
   * The hash scheme of this event, as its metadata names it (1 when it names none). Said on the
   * line so a reader sees it without knowing where the scheme is kept; checked against the metadata.
   * Optional: bundles written before schemes were versioned lack it, and their events are scheme 1.
   */
  hashScheme: z.number().int().optional(),
  prevHash: sha256Hex,
  hash: sha256Hex,
});
export type BundleEvent = z.infer<typeof bundleEventSchema>;

/** Thrown by `writeBundle` when the events do not match the header it was given. */
export class BundleWriteError extends Error {}
/** Thrown by `readBundleEvents` on a line that is not a bundle event. */
export class BundleFormatError extends Error {
  constructor(readonly line: number, message: string) {
    super(`line ${line}: ${message}`);
  }
}

export function bundleHeader(order: BundleHeader['order'], createdAt: string, streams: BundleHeader['streams']): BundleHeader {
  return { format: BUNDLE_FORMAT, version: BUNDLE_VERSION, createdAt, order, streams, events: streams.reduce((n, s) => n + s.revision + 1, 0) };
}

/** One event as a bundle line (no newline). Keys in a fixed order so bundles diff cleanly. */
export function bundleLine(e: StoredEvent): string {
  const line: BundleEvent = {
    stream: e.stream, revision: e.revision, position: e.position, id: e.id, type: e.type, data: e.data, metadata: e.metadata,
    hashScheme: hashScheme(e.metadata) ?? undefined, prevHash: e.prevHash, hash: e.hash,
  };
  return JSON.stringify(line);
}

/**
 * The bundle as lines, each ending in a newline, pulled one at a time so an export of any size
 * streams. Throws after the last line if the events were fewer or more than the header says
 * (the reader then holds a bundle that `verifyBundle` refuses, never a silently short one).
 */
export async function* writeBundle(header: BundleHeader, events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): AsyncGenerator<string> {
  yield `${JSON.stringify(header)}\n`;
  let n = 0;
  for await (const e of events) {
    n++;
    yield `${bundleLine(e)}\n`;
  }
  if (n !== header.events) throw new BundleWriteError(`the bundle header announced ${header.events} events but ${n} were written`);
}

export type BundleStreamReport = {
  stream: string;
  /** Event lines of this stream in the bundle. */
  events: number;
  lastHash: string | null;
  valid: boolean;
  firstInvalidRevision: number | null;
  /** How many of the stream's verified events each hash scheme covers, e.g. { "1": 3, "2": 5 }. */
  schemes: Record<string, number>;
};

export type BundleError = {
  /** null when the fault cannot be pinned on a stream (the header, an unreadable line). */
  stream: string | null;
  revision: number | null;
  /** 1-based line of the file, or null for a fault found only at the end (lines missing). */
  line: number | null;
  reason: string;
};

export type BundleReport = {
  valid: boolean;
  /** null when the first line is not a bundle header of this format and version. */
  header: BundleHeader | null;
  /** Event lines read (unreadable ones included). */
  events: number;
  /** The header's streams in its order, then any stream it does not list. */
  streams: BundleStreamReport[];
  /** The first fault in file order. */
  firstError?: BundleError;
};

type StreamState = {
  stream: string;
  listed: BundleHeader['streams'][number] | undefined;
  events: number;
  nextRevision: number;
  /** The last verified event's hash and scheme; null before revision 0. */
  prev: { hash: string; scheme: HashScheme } | null;
  lastHash: string | null;
  lastPosition: bigint;
  lastRecordedAt: string;
  firstInvalidRevision: number | null;
  schemes: Record<string, number>;
};

// Our writer puts stream and revision first, so even a line cut off mid-way usually still
// names which event it was; that lets a truncated file be reported against a revision.
const LINE_PREFIX = /^\{"stream":("(?:[^"\\]|\\.)*"),"revision":(\d+)[,}]/;

function salvage(text: string): { stream: string; revision: number } | null {
  const m = LINE_PREFIX.exec(text);
  if (!m) return null;
  try {
    return { stream: JSON.parse(m[1]!) as string, revision: Number(m[2]) };
  } catch {
    return null; // an escape cut in half: the line names nothing we can trust
  }
}

const issueText = (error: z.ZodError) => error.issues.map((i) => `${i.path.join('.') || 'line'} ${i.message}`).join('; ');

/**
 * Verifies a bundle line by line, holding one small record per stream (not the events), so a
 * bundle of any size is checked in one pass. Every hash is recomputed with `eventHash`.
 */
export function createBundleVerifier() {
  let lineNo = 0;
  let header: BundleHeader | null = null;
  let headerFailed = false;
  let events = 0;
  let lastGlobalPosition = -1n;
  let lastGlobalRecordedAt = '';
  let firstError: BundleError | undefined;
  const states = new Map<string, StreamState>();
  // Ids are not hashed, but an import needs them unique: a repeated id is a broken bundle.
  const ids = new Set<string>();

  const fail = (e: BundleError) => {
    firstError ??= e;
  };
  const stateOf = (stream: string): StreamState => {
    let st = states.get(stream);
    if (!st) {
      const listed = header?.streams.find((s) => s.stream === stream);
      st = { stream, listed, events: 0, nextRevision: 0, prev: null, lastHash: null, lastPosition: -1n, lastRecordedAt: '', firstInvalidRevision: null, schemes: {} };
      states.set(stream, st);
      if (!listed) {
        st.firstInvalidRevision = 0;
        fail({ stream, revision: 0, line: lineNo, reason: `stream ${stream} is not listed in the header` });
      }
    }
    return st;
  };
  const invalidate = (st: StreamState, reason: string) => {
    if (st.firstInvalidRevision !== null) return;
    st.firstInvalidRevision = st.nextRevision;
    fail({ stream: st.stream, revision: st.nextRevision, line: lineNo, reason });
  };

  function readHeader(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      headerFailed = true;
      fail({ stream: null, revision: null, line: lineNo, reason: 'the first line is not JSON: not a bundle' });
      return;
    }
    const parsed = bundleHeaderSchema.safeParse(json);
    if (!parsed.success) {
      headerFailed = true;
      const what = (json as { format?: unknown; version?: unknown } | null);
      const reason = what?.format === BUNDLE_FORMAT && what.version !== BUNDLE_VERSION
        ? `bundle version ${JSON.stringify(what.version)} is not one this verifier reads (version ${BUNDLE_VERSION})`
        : `the first line is not a ${BUNDLE_FORMAT} header: ${issueText(parsed.error)}`;
      fail({ stream: null, revision: null, line: lineNo, reason });
      return;
    }
    header = parsed.data;
    const names = new Set<string>();
    for (const s of header.streams) {
      if (names.has(s.stream)) fail({ stream: s.stream, revision: null, line: lineNo, reason: `the header lists stream ${s.stream} twice` });
      names.add(s.stream);
    }
  }

  function readEvent(text: string): void {
    events++;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      const named = salvage(text);
      const reason = `line ${lineNo} is not complete JSON (a truncated or damaged file)`;
      if (named) invalidate(stateOf(named.stream), reason);
      else fail({ stream: null, revision: null, line: lineNo, reason });
      return;
    }
    const parsed = bundleEventSchema.safeParse(json);
    if (!parsed.success) {
      const named = salvage(text);
      const reason = `line ${lineNo} is not a bundle event: ${issueText(parsed.error)}`;
      if (named) invalidate(stateOf(named.stream), reason);
      else fail({ stream: null, revision: null, line: lineNo, reason });
      return;
    }
    const e = parsed.data;
    const st = stateOf(e.stream);
    st.events++;
    const previousHash = st.lastHash;
    st.lastHash = e.hash;
    if (st.firstInvalidRevision !== null) return; // past a break, nothing later in the stream proves anything
    const position = BigInt(e.position);
    if (e.revision !== st.nextRevision) {
      return invalidate(st, e.revision < st.nextRevision
        ? `revision ${e.revision} appears again, or out of order, where revision ${st.nextRevision} should be`
        : `revision ${st.nextRevision} is missing: the next line holds revision ${e.revision}`);
    }
    const scheme = hashScheme(e.metadata);
    if (e.hashScheme !== undefined && e.hashScheme !== (scheme ?? e.metadata.hashScheme)) {
      return invalidate(st, `the line says hash scheme ${e.hashScheme} but the event's metadata says ${JSON.stringify(e.metadata.hashScheme ?? 1)}`);
    }
    const fault = chainFault(e, st.prev);
    if (fault) return invalidate(st, st.nextRevision > 0 && fault.startsWith('prevHash') ? `${fault} (revision ${st.nextRevision - 1}${previousHash === null ? '' : `, ${previousHash}`})` : fault);
    // As the import requires: "as of an instant" must be a prefix of every stream and of the log.
    if (e.metadata.recordedAt < st.lastRecordedAt) return invalidate(st, `recordedAt ${e.metadata.recordedAt} is before the stream's previous event's ${st.lastRecordedAt}`);
    if (header?.order === 'global' && e.metadata.recordedAt < lastGlobalRecordedAt) {
      return invalidate(st, `recordedAt ${e.metadata.recordedAt} is before the previous line's ${lastGlobalRecordedAt}: the log's time went backwards`);
    }
    if (position <= st.lastPosition) return invalidate(st, `position ${e.position} is not after the stream's previous position`);
    if (header?.order === 'global' && position <= lastGlobalPosition) {
      return invalidate(st, `position ${e.position} is not after the previous line's: the lines are not in global order`);
    }
    if (ids.has(e.id)) return invalidate(st, `event id ${e.id} appears twice`);
    ids.add(e.id);
    st.lastPosition = position;
    lastGlobalPosition = position;
    st.lastRecordedAt = e.metadata.recordedAt;
    lastGlobalRecordedAt = e.metadata.recordedAt;
    st.prev = { hash: e.hash, scheme: scheme! };
    st.schemes[scheme!] = (st.schemes[scheme!] ?? 0) + 1;
    st.nextRevision++;
  }

  return {
    /** One line of the file, without its newline. */
    line(text: string): void {
      lineNo++;
      if (headerFailed) return;
      // A trailing newline or an editor's blank line carries nothing to verify.
      if (text.trim() === '') return;
      if (header === null) readHeader(text);
      else readEvent(text);
    },
    finish(): BundleReport {
      if (header === null) {
        if (!headerFailed) fail({ stream: null, revision: null, line: null, reason: 'the file is empty: no bundle header' });
        return { valid: false, header: null, events: 0, streams: [], firstError: firstError! };
      }
      const h: BundleHeader = header;
      // Ends of streams: a chain cut at its end is still a valid chain; only the header says so.
      for (const listed of h.streams) {
        const st = states.get(listed.stream);
        if (!st) {
          const missing: StreamState = {
            stream: listed.stream, listed, events: 0, nextRevision: 0, prev: null, lastHash: null, lastPosition: -1n, lastRecordedAt: '', firstInvalidRevision: 0, schemes: {},
          };
          states.set(listed.stream, missing);
          fail({ stream: listed.stream, revision: 0, line: null, reason: `the header lists stream ${listed.stream} up to revision ${listed.revision} but the bundle holds none of its events` });
          continue;
        }
        if (st.firstInvalidRevision !== null) continue;
        const last = st.nextRevision - 1;
        if (last < listed.revision) {
          st.firstInvalidRevision = st.nextRevision;
          fail({ stream: st.stream, revision: st.nextRevision, line: null, reason: `the stream ends at revision ${last} but the header says ${listed.revision}: lines are missing` });
        } else if (last > listed.revision) {
          st.firstInvalidRevision = listed.revision + 1;
          fail({ stream: st.stream, revision: listed.revision + 1, line: null, reason: `the header says the stream ends at revision ${listed.revision}` });
        } else if (st.lastHash !== listed.lastHash) {
          st.firstInvalidRevision = listed.revision;
          fail({ stream: st.stream, revision: listed.revision, line: null, reason: `the last hash ${st.lastHash} is not the header's ${listed.lastHash}` });
        }
      }
      if (events !== h.events) fail({ stream: null, revision: null, line: null, reason: `the header announces ${h.events} events but the bundle holds ${events} event lines` });
      const order = [...h.streams.map((s) => s.stream), ...[...states.keys()].filter((s) => !h.streams.some((l) => l.stream === s))];
      const streams = order.map((name): BundleStreamReport => {
        const st = states.get(name)!;
        return { stream: name, events: st.events, lastHash: st.lastHash, valid: st.firstInvalidRevision === null, firstInvalidRevision: st.firstInvalidRevision, schemes: st.schemes };
      });
      return firstError ? { valid: false, header: h, events, streams, firstError } : { valid: true, header: h, events, streams };
    },
  };
}

/** Verifies a whole bundle given as lines (a file read line by line, or an array in memory). */
export async function verifyBundle(lines: AsyncIterable<string> | Iterable<string>): Promise<BundleReport> {
  const verifier = createBundleVerifier();
  for await (const line of lines) verifier.line(line);
  return verifier.finish();
}

/**
 * The events of a bundle, in file order, for an import. Checks the form of each line only: run
 * `verifyBundle` over the same lines first, as the chain is not checked here.
 */
export async function* readBundleEvents(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<StoredEvent> {
  let lineNo = 0;
  let sawHeader = false;
  for await (const text of lines) {
    lineNo++;
    if (text.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new BundleFormatError(lineNo, 'not complete JSON');
    }
    if (!sawHeader) {
      const h = bundleHeaderSchema.safeParse(json);
      if (!h.success) throw new BundleFormatError(lineNo, `not a ${BUNDLE_FORMAT} header: ${issueText(h.error)}`);
      sawHeader = true;
      continue;
    }
    const e = bundleEventSchema.safeParse(json);
    if (!e.success) throw new BundleFormatError(lineNo, `not a bundle event: ${issueText(e.error)}`);
    // The line's hashScheme repeats the metadata's (the verifier checks they agree): not part of the stored event.
    const { hashScheme: _said, ...event } = e.data;
    yield event;
  }
  if (!sawHeader) throw new BundleFormatError(0, 'the file is empty: no bundle header');
}
