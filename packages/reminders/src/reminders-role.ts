// The reminders role: at start, every review's pending sends are recomputed from the log and
// handed to the scheduler (the queue may have been lost); then each review event re-plans
// that review. Planning is pure; the scheduler only holds what the plan says.
//
// The queue can also be lost while the role runs (Redis flushed, or restarted without
// persistence): a marker set before each full re-plan goes with it, and a check on a schedule
// that finds it gone re-plans every review from the log. What was sent is in the log as
// ReminderSent, so the new plan holds only what is still unsent.
import type { Logger } from 'pino';
import { parseStreamName } from '@cm/domain';
import type { EventStore, Subscription } from '@cm/event-store';
import { planReminders, type ReminderOffset } from './reminder-planning.js';
import type { ReminderScheduler } from './reminder-scheduler.js';
import { loadReview } from './reminder-sender.js';

/** Reviews re-planned at once when the role starts. */
const RECONCILE_CONCURRENCY = 16;
/** How often the role looks whether the queue lost its data. */
export const QUEUE_CHECK_INTERVAL_MS = 30_000;

export function createRemindersRole(deps: {
  eventStore: EventStore;
  scheduler: ReminderScheduler;
  offsets: readonly ReminderOffset[];
  now: () => Date;
  logger: Logger;
  /** 0 turns the scheduled check off (a test calls `checkQueue` itself). */
  queueCheckIntervalMs?: number;
}) {
  const log = deps.logger.child({ component: 'reminders' });
  let subscription: Subscription | null = null;
  let checkTimer: NodeJS.Timeout | null = null;
  let checking: Promise<boolean> | null = null;

  async function replan(reviewId: string): Promise<number> {
    const { state } = await loadReview(deps.eventStore, reviewId);
    const plan = state.exists ? planReminders(state, deps.offsets, deps.now().toISOString()) : [];
    await deps.scheduler.sync(reviewId, plan);
    return plan.length;
  }

  /** Every review of the log re-planned; returns how many sends are pending. */
  async function reconcile(): Promise<{ reviews: number; sends: number }> {
    // Marked before, not after: data lost during the re-plan takes the marker too, and the
    // next check re-plans again.
    await deps.scheduler.markIntact();
    const ids = (await deps.eventStore.listStreams()).map(parseStreamName).flatMap((s) => (s?.kind === 'review' ? [s.id] : []));
    // Reviews are independent: several at once keep the queue's round trips overlapping.
    let sends = 0;
    let next = 0;
    const worker = async () => {
      while (next < ids.length) sends += await replan(ids[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(RECONCILE_CONCURRENCY, ids.length) }, worker));
    return { reviews: ids.length, sends };
  }

  /** Re-plans everything if the queue lost its data since the last full re-plan; true if it did. */
  function checkQueue(): Promise<boolean> {
    checking ??= (async () => {
      try {
        if (await deps.scheduler.intact()) return false;
        log.warn('the reminder queue lost its data; re-planning every review from the log');
        const { reviews, sends } = await reconcile();
        log.info({ reviews, pendingSends: sends }, 'reminders re-planned after the queue lost its data');
        return true;
      } finally {
        checking = null;
      }
    })();
    return checking;
  }

  return {
    replan,
    checkQueue,
    async start(): Promise<void> {
      const head = await deps.eventStore.headPosition();
      const { reviews, sends } = await reconcile();
      log.info({ reviews, pendingSends: sends }, 'reminders reconciled with the log');
      subscription = deps.eventStore.subscribe({
        after: head,
        onEvents: async (events) => {
          const touched = new Set<string>();
          for (const e of events) {
            const s = parseStreamName(e.stream);
            // A ReminderFailed re-plans too: the plan retries it after a backoff (FAILED_SEND_RETRY).
            if (s?.kind === 'review' && e.type !== 'ReminderSent') touched.add(s.id);
          }
          for (const id of touched) await replan(id);
        },
        onError: (err) => log.error({ err }, 're-planning reminders failed; it will be retried'),
      });
      const every = deps.queueCheckIntervalMs ?? QUEUE_CHECK_INTERVAL_MS;
      if (every > 0) {
        checkTimer = setInterval(() => {
          checkQueue().catch((err: unknown) => log.error({ err }, 'checking the reminder queue failed; it is checked again later'));
        }, every);
        checkTimer.unref();
      }
    },
    async stop(): Promise<void> {
      if (checkTimer) clearInterval(checkTimer);
      await checking?.catch(() => undefined);
      await subscription?.close();
      await deps.scheduler.close();
    },
  };
}
