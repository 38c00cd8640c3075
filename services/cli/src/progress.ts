// Progress of the bundle commands on stderr (stdout may be carrying the bundle itself): rewritten
// in place on a terminal, one line every few seconds into a log file or pipe, so a long export
// or import shows it is alive without flooding a CI log.
export type Progress = {
  update(done: number, total: number | null): void;
  /** Prints the final count and ends the line. */
  end(done: number, total: number | null): void;
};

const count = (n: number) => n.toLocaleString('en');

export function createProgress(options: { label: string; tty: boolean; write: (s: string) => void; now?: () => number; ttyMs?: number; lineMs?: number }): Progress {
  const now = options.now ?? Date.now;
  const every = options.tty ? (options.ttyMs ?? 250) : (options.lineMs ?? 5000);
  const started = now();
  let last = started;
  let open = false;
  const line = (done: number, total: number | null) => {
    const seconds = (now() - started) / 1000;
    const rate = seconds > 0 ? `, ${count(Math.round(done / seconds))} events/s` : '';
    const share = total ? ` (${((100 * done) / total).toFixed(1)}%)` : '';
    return `${options.label}: ${count(done)}${total === null ? '' : `/${count(total)}`} events${share}${rate}`;
  };
  const print = (done: number, total: number | null) => {
    if (options.tty) {
      // \r and erase-to-end-of-line: the line is rewritten where it stands.
      options.write(`\r${line(done, total)}\x1b[K`);
      open = true;
    } else options.write(`${line(done, total)}\n`);
  };
  return {
    update(done, total) {
      if (now() - last < every) return;
      last = now();
      print(done, total);
    },
    end(done, total) {
      print(done, total);
      if (open) options.write('\n');
      open = false;
    },
  };
}
