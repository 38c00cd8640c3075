// What every benchmark suite hands to `pnpm bench` (tests/bench/run-all.ts): rows of one table
// where each figure stands beside a baseline measured in the same run, as a ratio.

export type BenchOptions = {
  quick: boolean;
  /** A progress line for the person watching (goes to stderr). */
  progress: (message: string) => void;
  /** Redis for the suites that need it (read models, BullMQ, rate limits). */
  redisUrl: string;
};

export type BenchRow = {
  /** Table section, e.g. "commands", "queries", "rebuild", "lag", "reminders", "memory". */
  group: string;
  /** What was measured, e.g. "progress reports, 16 clients, 16 streams". */
  name: string;
  value: number;
  unit: string;
  baseline: { name: string; value: number; unit: string } | null;
  /** value / baseline.value (or the inverse for latencies, say which in `ratioNote`). */
  ratio: number | null;
  ratioNote?: string;
  /** The target of issue 7, when there is one, and whether this run met it. */
  target?: { text: string; met: boolean };
  /** Anything a reader needs: sample size, p50 beside a p99, dataset size. */
  details?: Record<string, unknown>;
};

export type BenchSuite = (options: BenchOptions) => Promise<BenchRow[]>;
