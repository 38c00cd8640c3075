// What an operator sees while `rebuild` runs: how often progress is printed on a terminal and
// in a log, and what the summary says, including the differences found by --check.
import { describe, expect, it } from 'vitest';
import type { RebuildProgress, RebuildSummary } from '@cm/read-models';
import { createProgressPrinter, progressLine, summaryLines } from './rebuild-report.js';

const at = (events: number, o: Partial<RebuildProgress> = {}): RebuildProgress => ({
  phase: 'building', events, position: String(events), head: '10000', eventsPerSecond: 2500, etaSeconds: (10000 - events) / 2500, ...o,
});

function run(tty: boolean, steps: [ms: number, p: RebuildProgress][]) {
  let clock = 0;
  let out = '';
  const printer = createProgressPrinter({ tty, write: (s) => void (out += s), now: () => clock });
  for (const [ms, p] of steps) {
    clock = ms;
    printer.update(p);
  }
  printer.end();
  return out;
}

describe('rebuild progress', () => {
  const steps: [number, RebuildProgress][] = [
    [0, at(0, { position: null, etaSeconds: null, eventsPerSecond: 0 })],
    [400, at(1000)], [900, at(2000)], [1100, at(3000)], [2500, at(5000)], [5200, at(8000)], [5600, at(10000)],
    [5601, at(10000, { phase: 'switching' })], [5700, at(10000, { phase: 'dropping' })], [6000, at(10000, { phase: 'done' })],
  ];

  it('rewrites one line in place at most once a second on a terminal, then prints the switch on lines of its own', () => {
    const out = run(true, steps);
    const frames = out.split('\n')[0]!.split('\r').filter(Boolean);
    expect(frames.map((f) => f.replace('\x1b[K', ''))).toEqual([
      progressLine(at(0, { position: null, etaSeconds: null, eventsPerSecond: 0 })),
      progressLine(at(3000)),
      progressLine(at(5000)),
      progressLine(at(8000)),
      progressLine(at(10000)),
    ]);
    expect(out.split('\n').slice(1)).toEqual(['switching readers to the rebuilt generation...', 'dropping the previous generation...', '']);
  });

  it('prints a new line every 5 s into a pipe or a log, and always the line that reaches the head', () => {
    const lines = run(false, steps).trimEnd().split('\n');
    expect(lines).toEqual([
      progressLine(at(0, { position: null, etaSeconds: null, eventsPerSecond: 0 })),
      progressLine(at(8000)),
      progressLine(at(10000)),
      'switching readers to the rebuilt generation...',
      'dropping the previous generation...',
    ]);
  });

  it('says how many events are done out of the head, the rate and the time left', () => {
    expect(progressLine(at(2500, { eventsPerSecond: 1234.4, etaSeconds: 75 }))).toBe('rebuilding: 2,500 events done, position 2,500/10,000 (25.0%), 1,234 events/s, ETA 1 min 15 s');
  });
});

describe('rebuild summary', () => {
  const base: RebuildSummary = {
    events: 3000, seconds: 1.5, eventsPerSecond: 2000, generation: 4, previousGeneration: 3, switched: true, checkpoint: '3000', droppedKeys: 1234, differences: [],
  };

  it('names the generation readers now use and what was dropped', () => {
    expect(summaryLines(base, false)).toEqual([
      'rebuilt generation 4 from 3,000 events in 1.5 s (2,000 events/s), up to position 3000',
      'readers now use generation 4; generation 3 was dropped (1,234 keys)',
    ]);
  });

  it('lists each difference --check found with its id, and says when the comparison could not be complete', () => {
    const lines = summaryLines({
      ...base, switched: false, droppedKeys: 0,
      differences: [{ kind: 'agreement', id: 'agr-03', description: 'agreement.title: live "X", rebuilt "Y"' }],
      compared: { agreements: 120, reviews: 12, exact: false, liveCheckpoint: '2990' },
    }, true);
    expect(lines).toEqual([
      'checked generation 3 against a rebuild from 3,000 events in 1.5 s (2,000 events/s); nothing was switched',
      'the live read models stood at position 2990 and the rebuild at 3000: only documents at the same revision were compared (120 agreements and 12 reviews live); run again when the projector is idle for a full check',
      '1 difference:',
      '  agreement agr-03: agreement.title: live "X", rebuilt "Y"',
    ]);
  });
});
