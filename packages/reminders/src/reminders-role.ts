// The reminders role: at start, every review's pending sends are recomputed from the log and
// handed to the scheduler (the queue may have been lost); then each review event re-plans
// that review. Planning is pure; the scheduler only holds what the plan says.
import type { Logger } from 'pino';
import { parseStreamName } from '@cm/domain';
import type { EventStore, Subscription } from '@cm/event-store';
import { planReminders, type ReminderOffset } from './reminder-planning';
import type { ReminderScheduler } from './reminder-scheduler';
import { loadReview } from './reminder-sender';

/** Reviews re-planned at once when the role starts. */
const RECONCILE_CONCURRENCY = 16;

export function createRemindersRole(deps: { eventStore: EventStore; scheduler: ReminderScheduler; offsets: readonly ReminderOffset[]; now: () => Date; logger: Logger }) {
  const log = deps.logger.child({ component: 'reminders' });
  let subscription: Subscription | null = null;

  async function replan(reviewId: string): Promise<number> {
    const { state } = await loadReview(deps.eventStore, reviewId);
    const plan = state.exists ? planReminders(state, deps.offsets, deps.now().toISOString()) : [];
    await deps.scheduler.sync(reviewId, plan);
    return plan.length;
  }

  return {
    replan,
    async start(): Promise<void> {
      const head = await deps.eventStore.headPosition();
      const ids = (await deps.eventStore.listStreams()).map(parseStreamName).flatMap((s) => (s?.kind === 'review' ? [s.id] : []));
      // Reviews are independent: several at once keep the queue's round trips overlapping.
      let sends = 0;
      let next = 0;
      const worker = async () => {
        while (next < ids.length) sends += await replan(ids[next++]!);
      };
      await Promise.all(Array.from({ length: Math.min(RECONCILE_CONCURRENCY, ids.length) }, worker));
      const reviews = ids.length;
      log.info({ reviews, pendingSends: sends }, 'reminders reconciled with the log');
      subscription = deps.eventStore.subscribe({
        after: head,
        onEvents: async (events) => {
          const touched = new Set<string>();
          for (const e of events) {
            const s = parseStreamName(e.stream);
            if (s?.kind === 'review' && e.type !== 'ReminderSent' && e.type !== 'ReminderFailed') touched.add(s.id);
          }
          for (const id of touched) await replan(id);
        },
        onError: (err) => log.error({ err }, 're-planning reminders failed; it will be retried'),
      });
    },
    async stop(): Promise<void> {
      await subscription?.close();
      await deps.scheduler.close();
    },
  };
}
