// The scheduler port and its in-process adapter (timers). Jobs are keyed by the planned
// send's deterministic id; `sync` makes the pending set of one review equal to its plan.
import type { Logger } from 'pino';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import type { PlannedReminder } from './reminder-planning.js';

/** Another process holds this send (it is mailing it now): the job waits and looks
 * again, without spending one of its attempts (the holder may yet fail and free it). */
export class SendInProgressError extends Error {
  constructor(readonly reminderId: string) {
    super(`reminder ${reminderId} is being sent by another process`);
    this.name = 'SendInProgressError';
  }
}

/** How long a job whose send another process holds waits before it looks again. */
export const IN_PROGRESS_RECHECK_MS = 5000;

export type RetryPolicy = { attempts: number; backoffMs: number };

export type ReminderProcessor = {
  send(job: PlannedReminder): Promise<unknown>;
  fail(job: PlannedReminder, error: unknown, attempts: number): Promise<void>;
};

export interface ReminderScheduler {
  /** Pending sends of this review become exactly `plan` (missing ones added, others removed). */
  sync(reviewId: string, plan: readonly PlannedReminder[]): Promise<void>;
  /** Ids of the pending sends (for checks and tests). */
  pending(): Promise<string[]>;
  /**
   * False once the store behind the queue lost what it held since `markIntact` (Redis flushed,
   * or restarted without persistence): every review must then be synced again.
   */
  intact(): Promise<boolean>;
  markIntact(): Promise<void>;
  close(): Promise<void>;
}

const MAX_TIMER_MS = 2 ** 31 - 1;

export function createInProcessScheduler(deps: {
  processor: ReminderProcessor;
  logger: Logger;
  retry?: RetryPolicy;
  now?: () => Date;
  /** Time and timers (a test moves its own); `now`, if given, replaces only the time. */
  clock?: Clock;
  /** Sends at once at most; the rest wait their turn (an SMTP relay limits connections per client). */
  concurrency?: number;
}): ReminderScheduler & { settled(): Promise<void> } {
  const clock: Clock = deps.clock ?? (deps.now ? { ...systemClock, now: deps.now } : systemClock);
  const concurrency = deps.concurrency ?? 10;
  let active = 0;
  const waiting: (() => void)[] = [];
  const acquire = () => (active < concurrency ? (active++, Promise.resolve()) : new Promise<void>((resolve) => waiting.push(() => (active++, resolve()))));
  const releaseSlot = () => {
    active--;
    waiting.shift()?.();
  };
  const log = deps.logger.child({ component: 'reminder-scheduler', adapter: 'in-process' });
  const retry = deps.retry ?? { attempts: 5, backoffMs: 2000 };
  const now = () => clock.now();
  const jobs = new Map<string, { job: PlannedReminder; timer: TimerHandle | null; running: boolean }>();
  let closed = false;
  const inFlight = new Set<Promise<void>>();

  function arm(id: string, at: number) {
    const entry = jobs.get(id);
    if (!entry || closed) return;
    const delay = Math.max(0, at - now().getTime());
    // Timers cap at ~24.8 days: far sends re-arm on the way. A Node timer also fires up to 1 ms
    // before Date.now() reaches its time (timers run on the monotonic clock): run it then and the
    // sender, re-planning by the wall clock, finds the send not yet due and drops it for good.
    // So the job runs only once the clock the plan uses has reached `at`; otherwise re-arm.
    entry.timer = clock.setTimer(() => (at > now().getTime() ? arm(id, at) : run(id, 1)), Math.min(delay, MAX_TIMER_MS));
  }

  function run(id: string, attempt: number) {
    const entry = jobs.get(id);
    if (!entry || closed) return;
    entry.timer = null;
    entry.running = true;
    const p = (async () => {
      await acquire();
      try {
        if (closed) return;
        await deps.processor.send(entry.job);
        jobs.delete(id);
      } catch (err) {
        if (err instanceof SendInProgressError) {
          // Held elsewhere (a ledger shared with another process): look again, same attempt.
          entry.running = false;
          if (!closed && jobs.has(id)) entry.timer = clock.setTimer(() => run(id, attempt), IN_PROGRESS_RECHECK_MS);
          return;
        }
        if (attempt >= retry.attempts) {
          jobs.delete(id);
          await deps.processor.fail(entry.job, err, attempt).catch((e: unknown) => log.error({ err: e, reminder: id }, 'recording a failed reminder failed'));
          return;
        }
        const wait = retry.backoffMs * 2 ** (attempt - 1);
        log.warn({ err, reminder: id, attempt, retryInMs: wait }, 'reminder send failed; retrying');
        entry.running = false;
        if (!closed && jobs.has(id)) entry.timer = clock.setTimer(() => run(id, attempt + 1), wait);
      } finally {
        releaseSlot();
        if (jobs.get(id) === entry) entry.running = false;
      }
    })();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }

  return {
    async sync(reviewId, plan) {
      const wanted = new Map(plan.map((j) => [j.id, j]));
      for (const [id, entry] of jobs) {
        if (entry.job.reviewId === reviewId && !wanted.has(id) && !entry.running) {
          if (entry.timer) clock.clearTimer(entry.timer);
          jobs.delete(id);
        }
      }
      for (const [id, job] of wanted) {
        if (jobs.has(id)) continue;
        jobs.set(id, { job, timer: null, running: false });
        arm(id, Date.parse(job.sendAt));
      }
    },
    async pending() {
      return [...jobs.keys()];
    },
    // Timers in this process: lost only with the process, and a new one re-plans at start.
    async intact() {
      return true;
    },
    /** Resolves once no send is in flight (the ones waiting on a timer are not in flight). */
    async settled() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    async markIntact() {},
    async close() {
      closed = true;
      for (const entry of jobs.values()) if (entry.timer) clock.clearTimer(entry.timer);
      await Promise.allSettled([...inFlight]);
      jobs.clear();
    },
  };
}
