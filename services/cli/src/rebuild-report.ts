// What the rebuild command prints: a progress line while it works (rewritten in place on a
// terminal, one line every few seconds into a log file or pipe), then a summary a person reads.
import type { RebuildProgress, RebuildSummary } from '@cm/read-models';

const count = (n: number) => Math.round(n).toLocaleString('en');
const duration = (s: number) => {
  const t = Math.round(s);
  return t < 60 ? `${t} s` : t < 3600 ? `${Math.floor(t / 60)} min ${t % 60} s` : `${Math.floor(t / 3600)} h ${Math.floor((t % 3600) / 60)} min`;
};

export function progressLine(p: RebuildProgress): string {
  const at = p.position === null ? 0 : Number(p.position);
  const head = p.head === null ? null : Number(p.head);
  const share = head ? ` (${((100 * at) / head).toFixed(1)}%)` : '';
  const eta = p.etaSeconds === null ? '' : `, ETA ${duration(p.etaSeconds)}`;
  const what = p.phase === 'catching-up' ? 'catching up with the live projector' : 'rebuilding';
  return `${what}: ${count(p.events)} events done, position ${count(at)}/${head === null ? '?' : count(head)}${share}, ${count(p.eventsPerSecond)} events/s${eta}`;
}

const PHASE_LINES: Partial<Record<RebuildProgress['phase'], string>> = {
  comparing: 'comparing the live read models with the rebuilt ones...',
  switching: 'switching readers to the rebuilt generation...',
  dropping: 'dropping the previous generation...',
};

/** Throttles progress: every `ttyMs` in place on a terminal, every `lineMs` as a new line elsewhere. */
export function createProgressPrinter(options: { tty: boolean; write: (s: string) => void; now?: () => number; ttyMs?: number; lineMs?: number }) {
  const now = options.now ?? Date.now;
  const every = options.tty ? (options.ttyMs ?? 1000) : (options.lineMs ?? 5000);
  let last = Number.NEGATIVE_INFINITY;
  let phase: RebuildProgress['phase'] | null = null;
  let open = false;
  const close = () => {
    if (open) options.write('\n');
    open = false;
  };
  return {
    update(p: RebuildProgress): void {
      if (p.phase !== phase) {
        phase = p.phase;
        const line = PHASE_LINES[p.phase];
        if (line) {
          close();
          options.write(`${line}\n`);
        }
      }
      if (p.phase !== 'building' && p.phase !== 'catching-up') return;
      const reachedHead = p.position !== null && p.position === p.head;
      if (!reachedHead && now() - last < every) return;
      last = now();
      if (options.tty) {
        // \r and erase-to-end-of-line: the line is rewritten where it stands.
        options.write(`\r${progressLine(p)}\x1b[K`);
        open = true;
      } else {
        options.write(`${progressLine(p)}\n`);
      }
    },
    /** Ends an open terminal line, so what follows starts on its own line. */
    end: close,
  };
}

export function summaryLines(s: RebuildSummary, check: boolean): string[] {
  const built = `${count(s.events)} events in ${s.seconds.toFixed(1)} s (${count(s.eventsPerSecond)} events/s)`;
  if (!check) {
    return [
      `rebuilt generation ${s.generation} from ${built}, up to position ${s.checkpoint ?? 'none (empty log)'}`,
      `readers now use generation ${s.generation}; generation ${s.previousGeneration} was dropped (${count(s.droppedKeys)} keys)`,
    ];
  }
  const c = s.compared;
  const lines = [`checked generation ${s.previousGeneration} against a rebuild from ${built}; nothing was switched`];
  if (c) {
    lines.push(c.exact
      ? `both stood at position ${s.checkpoint}: all ${count(c.agreements)} agreements, ${count(c.reviews)} reviews and the dashboard were compared`
      : `the live read models stood at position ${c.liveCheckpoint ?? 'none'} and the rebuild at ${s.checkpoint ?? 'none'}: only documents at the same revision were compared (${count(c.agreements)} agreements and ${count(c.reviews)} reviews live); run again when the projector is idle for a full check`);
  }
  if (s.differences.length === 0) {
    lines.push('no differences');
  } else {
    lines.push(`${s.differences.length} difference${s.differences.length === 1 ? '' : 's'}:`);
    for (const d of s.differences) lines.push(`  ${d.kind} ${d.id}: ${d.description}`);
  }
  return lines;
}
