// The bundle verifier as an auditor meets it: a genuine bundle verifies; a changed field, a
// dropped line, reordered lines, lines cut off at the end and a truncated last line are each
// named by stream and first bad revision, never a crash. Pure: bundles are built in memory.
import { describe, expect, it } from 'vitest';
import { bundleHeader, readBundleEvents, verifyBundle, writeBundle, type BundleHeader } from './bundle.js';
import type { StoredEvent } from './event-store.js';
import { CURRENT_HASH_SCHEME, eventHash, genesisHash, type HashScheme } from './hash-chain.js';

let position = 0;
function chain(stream: string, n: number, recordedAt = '2026-03-01T10:00:00.000Z', scheme: HashScheme = CURRENT_HASH_SCHEME): StoredEvent[] {
  const out: StoredEvent[] = [];
  let prevHash = genesisHash(scheme, stream);
  for (let revision = 0; revision < n; revision++) {
    const type = revision === 0 ? 'AgreementSigned' : 'ProgressReported';
    const data = revision === 0 ? { agreementId: stream, title: `Agreement ${stream}` } : { commitmentId: 'c-1', percent: revision * 10, note: 'ñandú "quoted"' };
    const metadata = { actor: 'auditor-test', occurredAt: '2026-02-01T00:00:00.000Z', correlationId: `corr-${revision}`, recordedAt, ...(scheme === 1 ? {} : { hashScheme: scheme }) };
    const id = `${stream}-${revision}`;
    const hash = eventHash({ stream, id, revision, prevHash, type, data, metadata });
    out.push({ id, stream, revision, position: String(++position), type, data, metadata, prevHash, hash });
    prevHash = hash;
  }
  return out;
}

const headsOf = (events: StoredEvent[]): BundleHeader['streams'] => {
  const last = new Map<string, StoredEvent>();
  for (const e of events) last.set(e.stream, e);
  return [...last.values()].map((e) => ({ stream: e.stream, revision: e.revision, lastHash: e.hash }));
};

async function linesOf(order: BundleHeader['order'], events: StoredEvent[]): Promise<string[]> {
  const out: string[] = [];
  for await (const line of writeBundle(bundleHeader(order, '2026-03-02T00:00:00.000Z', headsOf(events)), events)) out.push(line.slice(0, -1));
  return out;
}

/** Two streams interleaved as a log would hold them (a0 b0 a1 b1 ...), positions ascending. */
function interleaved(): StoredEvent[] {
  const a = chain('agreement-a', 5);
  const b = chain('agreement-b', 4);
  const out = a.flatMap((e, i) => (b[i] ? [e, b[i]] : [e]));
  // Positions are not hashed: renumbering them keeps every chain valid.
  return out.map((e, i) => ({ ...e, position: String(1000 + i) }));
}

describe('verifyBundle', () => {
  it('verifies a genuine stream bundle and reports each stream with its last hash', async () => {
    const events = chain('agreement-a', 6);
    const r = await verifyBundle(await linesOf('stream', events));
    expect(r.firstError).toBeUndefined();
    expect(r.valid).toBe(true);
    expect(r.header).toMatchObject({ format: 'commitment-monitor-bundle', version: 1, order: 'stream', events: 6 });
    expect(r.streams).toEqual([{ stream: 'agreement-a', events: 6, lastHash: events[5]!.hash, valid: true, firstInvalidRevision: null, schemes: { 2: 6 } }]);
  });

  it('verifies a genuine archive in global order, streams interleaved, with a trailing newline', async () => {
    const lines = await linesOf('global', interleaved());
    const r = await verifyBundle([...lines, '']);
    expect(r.valid).toBe(true);
    expect(r.streams.map((s) => [s.stream, s.events, s.valid])).toEqual([['agreement-a', 5, true], ['agreement-b', 4, true]]);
  });

  it('names the revision whose data was changed, and leaves the other stream valid', async () => {
    const lines = await linesOf('global', interleaved());
    const i = lines.findIndex((l) => l.includes('"stream":"agreement-a","revision":3,'));
    const e = JSON.parse(lines[i]!) as StoredEvent & { data: { percent: number } };
    e.data.percent = 95;
    lines[i] = JSON.stringify(e);
    const r = await verifyBundle(lines);
    expect(r.valid).toBe(false);
    expect(r.firstError).toMatchObject({ stream: 'agreement-a', revision: 3, line: i + 1 });
    expect(r.firstError!.reason).toMatch(/hash does not match/);
    expect(r.streams).toEqual([
      expect.objectContaining({ stream: 'agreement-a', valid: false, firstInvalidRevision: 3 }),
      expect.objectContaining({ stream: 'agreement-b', valid: true, firstInvalidRevision: null }),
    ]);
  });

  it('catches a change to the metadata (a rewritten occurredAt) as well', async () => {
    const lines = await linesOf('stream', chain('agreement-a', 3));
    lines[2] = lines[2]!.replace('"occurredAt":"2026-02-01T00:00:00.000Z"', '"occurredAt":"2025-12-31T00:00:00.000Z"');
    const r = await verifyBundle(lines);
    expect(r.firstError).toMatchObject({ stream: 'agreement-a', revision: 1 });
  });

  it('names a dropped line by the revision that is missing', async () => {
    const lines = await linesOf('stream', chain('agreement-a', 6));
    lines.splice(3, 1); // line 4 of the file: revision 2
    const r = await verifyBundle(lines);
    expect(r.valid).toBe(false);
    expect(r.firstError).toMatchObject({ stream: 'agreement-a', revision: 2 });
    expect(r.firstError!.reason).toMatch(/revision 2 is missing/);
  });

  it('names lines dropped from the end of a stream, which leave a valid chain, through the header', async () => {
    const lines = await linesOf('stream', chain('agreement-a', 6));
    const r = await verifyBundle(lines.slice(0, -2));
    expect(r.valid).toBe(false);
    expect(r.streams[0]).toMatchObject({ valid: false, firstInvalidRevision: 4, events: 4 });
    expect(r.firstError).toMatchObject({ stream: 'agreement-a', revision: 4, line: null });
  });

  it('names reordered lines by the first revision out of place', async () => {
    const lines = await linesOf('stream', chain('agreement-a', 6));
    [lines[3], lines[4]] = [lines[4]!, lines[3]!]; // revisions 2 and 3 swapped
    const r = await verifyBundle(lines);
    expect(r.firstError).toMatchObject({ stream: 'agreement-a', revision: 2 });
  });

  it('refuses an archive whose streams are each in order but whose lines are not in global order', async () => {
    const lines = await linesOf('global', interleaved());
    // Swap b0 (line 3) and a1 (line 4): each stream's own chain is still intact.
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    const r = await verifyBundle(lines);
    expect(r.valid).toBe(false);
    expect(r.firstError).toMatchObject({ stream: 'agreement-b', revision: 0, line: 4 });
    expect(r.firstError!.reason).toMatch(/not in global order/);
  });

  it('reports a truncated last line as invalid, against its stream and revision, without throwing', async () => {
    const lines = await linesOf('global', interleaved());
    const last = lines.at(-1)!;
    const named = JSON.parse(last) as StoredEvent;
    lines[lines.length - 1] = last.slice(0, Math.floor(last.length / 2));
    const r = await verifyBundle(lines);
    expect(r.valid).toBe(false);
    expect(r.firstError).toMatchObject({ stream: named.stream, revision: named.revision, line: lines.length });
    expect(r.firstError!.reason).toMatch(/not complete JSON/);
    expect(r.streams.find((s) => s.stream === named.stream)).toMatchObject({ valid: false, firstInvalidRevision: named.revision });
  });

  it('reports a line cut before its stream is named without pinning it on a stream', async () => {
    const lines = await linesOf('stream', chain('agreement-a', 3));
    lines[3] = '{"stre';
    const r = await verifyBundle(lines);
    expect(r.firstError).toMatchObject({ stream: null, line: 4 });
    // ...and the header still names the stream left short.
    expect(r.streams[0]).toMatchObject({ valid: false, firstInvalidRevision: 2 });
  });

  it('reads a file that is not a bundle as having no header', async () => {
    expect(await verifyBundle([])).toMatchObject({ valid: false, header: null, firstError: { reason: expect.stringMatching(/empty/) } });
    expect(await verifyBundle(['hello'])).toMatchObject({ valid: false, header: null });
    expect(await verifyBundle(['{"format":"other"}'])).toMatchObject({ valid: false, header: null });
    const [header] = await linesOf('stream', chain('agreement-a', 1));
    const v2 = await verifyBundle([header!.replace('"version":1', '"version":2')]);
    expect(v2).toMatchObject({ header: null, firstError: { reason: expect.stringMatching(/version 2/) } });
  });

  it('refuses a stream the header does not list', async () => {
    const a = chain('agreement-a', 2);
    const lines = await linesOf('stream', a);
    const extra = chain('agreement-x', 1);
    lines.push(JSON.stringify(extra[0]));
    const r = await verifyBundle(lines);
    expect(r.firstError).toMatchObject({ stream: 'agreement-x', revision: 0 });
    expect(r.streams.map((s) => s.stream)).toEqual(['agreement-a', 'agreement-x']);
  });
});

describe('hash schemes', () => {
  /** Streams a and b with their events' stream names exchanged, and a header to match (a header is not signed). */
  async function swapped(scheme: HashScheme): Promise<string[]> {
    const a = chain('agreement-a', 3, undefined, scheme);
    const b = chain('agreement-b', 3, undefined, scheme);
    const moved = [...a.map((e) => ({ ...e, stream: 'agreement-b' })), ...b.map((e) => ({ ...e, stream: 'agreement-a' }))];
    return linesOf('global', moved.map((e, i) => ({ ...e, position: String(i + 1) })));
  }

  it('under scheme 2, detects the events of two streams exchanged; under scheme 1 the exchange went unseen', async () => {
    const v2 = await verifyBundle(await swapped(2));
    expect(v2.valid).toBe(false);
    expect(v2.firstError).toMatchObject({ stream: 'agreement-b', revision: 0, line: 2 });
    expect(v2.firstError!.reason).toMatch(/genesis hash of stream agreement-b/);
    // What scheme 1 could not see, and why scheme 2 exists.
    expect((await verifyBundle(await swapped(1))).valid).toBe(true);
  });

  it('detects an event moved to another place of its own stream under scheme 2 (id and revision are hashed)', async () => {
    const a = chain('agreement-a', 3);
    const renamed = a.map((e, i) => (i === 1 ? { ...e, id: 'another-id' } : e));
    const r = await verifyBundle(await linesOf('stream', renamed));
    expect(r.firstError).toMatchObject({ stream: 'agreement-a', revision: 1 });
  });

  it('still verifies a bundle written under scheme 1, and says per stream which scheme its events use', async () => {
    const old = [...chain('agreement-a', 2, undefined, 1), ...chain('agreement-b', 2, undefined, 1)].map((e, i) => ({ ...e, position: String(i + 1) }));
    const lines = await linesOf('global', old);
    // A bundle of an earlier version has no hashScheme on its lines.
    const r = await verifyBundle(lines.map((l, i) => (i === 0 ? l : l.replace(/,"hashScheme":1/, ''))));
    expect(r.valid).toBe(true);
    expect(r.streams.map((s) => [s.stream, s.schemes])).toEqual([['agreement-a', { 1: 2 }], ['agreement-b', { 1: 2 }]]);
    expect(JSON.parse(lines[1]!)).toMatchObject({ hashScheme: 1 });
  });

  it('verifies a stream that moves from scheme 1 to scheme 2, and refuses one that goes back', async () => {
    const [v1] = chain('agreement-a', 1, undefined, 1);
    const next = (prev: StoredEvent, scheme: HashScheme): StoredEvent => {
      const metadata = { ...prev.metadata, ...(scheme === 2 ? { hashScheme: 2 } : {}) };
      if (scheme === 1) delete (metadata as { hashScheme?: number }).hashScheme;
      const e = { ...prev, id: `${prev.id}+`, revision: prev.revision + 1, position: String(Number(prev.position) + 1), metadata, prevHash: prev.hash };
      return { ...e, hash: eventHash(e) };
    };
    const up = next(v1!, 2);
    const r = await verifyBundle(await linesOf('stream', [v1!, up]));
    expect(r.valid).toBe(true);
    expect(r.streams[0]!.schemes).toEqual({ 1: 1, 2: 1 });
    const back = await verifyBundle(await linesOf('stream', [v1!, up, next(up, 1)]));
    expect(back.firstError).toMatchObject({ revision: 2 });
    expect(back.firstError!.reason).toMatch(/never goes back/);
  });
});

describe('recordedAt', () => {
  it('refuses a bundle whose recordedAt goes backwards, as the import does', async () => {
    const a = chain('agreement-a', 2, '2026-03-01T10:00:00.000Z');
    const b = chain('agreement-b', 1, '2026-03-01T09:00:00.000Z');
    const events = [...a, ...b].map((e, i) => ({ ...e, position: String(i + 1) }));
    const r = await verifyBundle(await linesOf('global', events));
    expect(r.valid).toBe(false);
    expect(r.firstError).toMatchObject({ stream: 'agreement-b', revision: 0, line: 4 });
    expect(r.firstError!.reason).toMatch(/before the previous line's 2026-03-01T10:00:00.000Z/);
  });
});

describe('writeBundle', () => {
  it('throws after the last line when the events are not what the header announced', async () => {
    const events = chain('agreement-a', 3);
    const header = bundleHeader('stream', '2026-03-02T00:00:00.000Z', headsOf(events));
    const lines: string[] = [];
    await expect((async () => {
      for await (const l of writeBundle(header, events.slice(0, 2))) lines.push(l);
    })()).rejects.toThrow(/announced 3 events but 2/);
    expect(lines).toHaveLength(3);
  });
});

describe('readBundleEvents', () => {
  it('gives back the events exactly as written', async () => {
    const events = interleaved();
    const back: StoredEvent[] = [];
    for await (const e of readBundleEvents(await linesOf('global', events))) back.push(e);
    expect(back).toEqual(events);
  });
});
