// The BullMQ adapter of the scheduler port: each planned send is a delayed job on Redis, so
// sends survive a restart and several reminders processes share the work. Job ids derive from
// the planned send's deterministic id, so adding the same send twice is a no-op; a Redis set
// per review remembers which sends were handed over, so `sync` can take back the ones a new
// plan drops without scanning the whole queue.
//
// The queue is a cache of the plan, not the record: the reminders role re-syncs every review
// at start and whenever the marker key `markIntact` set is gone (the Redis here keeps nothing on
// disk), and the sender re-plans from the review's stream before sending, so a stale or
// repeated job sends nothing.
import { createHash } from 'node:crypto';
import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { PlannedReminder } from './reminder-planning.js';
import { IN_PROGRESS_RECHECK_MS, SendInProgressError, type ReminderProcessor, type ReminderScheduler, type RetryPolicy } from './reminder-scheduler.js';

export type BullmqSchedulerOptions = {
  redisUrl: string;
  /** Queue `${namespace}-reminders`, review sets under `${namespace}:reminders:`. */
  namespace: string;
  processor: ReminderProcessor;
  logger: Logger;
  retry?: RetryPolicy;
  /** Sends in flight per process; SMTP waits dominate, so more than one pays off. */
  concurrency?: number;
  now?: () => Date;
  /** How long a job whose send another process holds waits before it looks again. */
  inProgressRecheckMs?: number;
};

const JOB_NAME = 'reminder';

/** BullMQ reserves ':' in job ids (it builds keys from them); planned ids contain '|' and e-mails. */
export function reminderJobId(plannedId: string): string {
  return createHash('sha256').update(plannedId).digest('hex');
}

export function createBullmqScheduler(options: BullmqSchedulerOptions): ReminderScheduler {
  const log = options.logger.child({ component: 'reminder-scheduler', adapter: 'bullmq' });
  const retry = options.retry ?? { attempts: 5, backoffMs: 2000 };
  const now = options.now ?? (() => new Date());
  const queueName = `${options.namespace}-reminders`;
  const reviewKey = (reviewId: string) => `${options.namespace}:reminders:review:${reviewId}`;
  // Set when every review was synced; it goes with the rest when Redis loses its data.
  const intactKey = `${options.namespace}:reminders:planned`;

  // Our own clients rather than connection options: BullMQ's ESM build cannot load ioredis by
  // itself, and it leaves clients it was given open, so close() quits them.
  // The queue side fails fast (a sync during an outage errors at once and the role retries it);
  // the worker waits for Redis to come back, which BullMQ requires of a blocking connection.
  const queueRedis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  const workerRedis = new Redis(options.redisUrl, { maxRetriesPerRequest: null });
  // BullMQ forwards client errors to the queue and worker listeners below, where they are
  // logged; these only keep an error raised after BullMQ let go of a client from crashing.
  queueRedis.on('error', () => undefined);
  workerRedis.on('error', () => undefined);

  // A Redis outage makes ioredis report every reconnect attempt: one line per distinct error
  // every 10 s is enough to see it without flooding the log.
  const lastLogged = new Map<string, number>();
  const logConnectionError = (source: 'queue' | 'worker') => (err: Error) => {
    const key = `${source}|${err.message}`;
    const at = Date.now();
    if ((lastLogged.get(key) ?? 0) > at - 10_000) return;
    lastLogged.set(key, at);
    log.error({ err, queue: queueName, source }, 'reminder queue error');
  };

  const queue = new Queue<PlannedReminder, unknown, string>(queueName, { connection: queueRedis });
  queue.on('error', logConnectionError('queue'));

  async function processJob(job: Job<PlannedReminder, unknown, string>, token?: string): Promise<unknown> {
    const reminder = job.data;
    if (typeof reminder?.id !== 'string' || typeof reminder.reviewId !== 'string') {
      // Retrying cannot fix a payload, and there is no review to record the failure on.
      log.error({ job: job.id, data: reminder }, 'reminder job without a planned send; dropped');
      throw new UnrecoverableError('reminder job payload is not a planned send');
    }
    const attempts = job.opts.attempts ?? 1;
    // attemptsMade counts the attempts that already failed; this one is the next.
    const attempt = job.attemptsMade + 1;
    try {
      return await options.processor.send(reminder);
    } catch (err) {
      if (err instanceof SendInProgressError && token) {
        // Another process is mailing it (its lock on this job lapsed and we were handed it):
        // look again later without spending an attempt; by then the mail is marked sent, or the
        // holder failed and its claim is free.
        log.info({ reminder: reminder.id }, 'reminder being sent by another process; looking again later');
        await job.moveToDelayed(now().getTime() + (options.inProgressRecheckMs ?? IN_PROGRESS_RECHECK_MS), token);
        throw new DelayedError();
      }
      if (attempt >= attempts) {
        // Recorded here, before BullMQ moves the job to failed, so it happens exactly once per
        // exhausted job (the 'failed' event is not awaited by worker.close()). A crash between
        // this and the move would run the job again; the failure record has a deterministic id.
        await options.processor.fail(reminder, err, attempt).catch((e: unknown) => log.error({ err: e, reminder: reminder.id }, 'recording a failed reminder failed'));
      } else {
        log.warn({ err, reminder: reminder.id, attempt, attempts }, 'reminder send failed; BullMQ retries it with backoff');
      }
      // BullMQ reads `message` and `stack` from what it is given.
      throw err instanceof Error ? err : new Error(String(err));
    }
  }

  const worker = new Worker<PlannedReminder, unknown, string>(queueName, processJob, {
    connection: workerRedis,
    concurrency: options.concurrency ?? 10,
  });
  worker.on('error', logConnectionError('worker'));
  // A stalled job means a process died mid-send (or its lock lapsed during a long one); the job
  // runs again, and doubles that mail only if SMTP had accepted it and the process died before
  // marking it sent (see reminder-sender.ts), so it is worth a line.
  worker.on('stalled', (jobId) => log.warn({ job: jobId, queue: queueName }, 'a reminder send was interrupted; it runs again'));

  let closing: Promise<void> | null = null;

  return {
    async sync(reviewId, plan) {
      await queue.waitUntilReady();
      const key = reviewKey(reviewId);
      const wanted = new Map(plan.map((p) => [p.id, p]));

      // Take back what the new plan dropped (a reschedule or cancellation) before adding, so
      // the review's set holds only what may still run.
      for (const plannedId of await queueRedis.smembers(key)) {
        if (wanted.has(plannedId)) continue;
        // Removes a delayed, waiting or finished job, or a missing one; refuses (0) a job that a
        // worker holds: that send is left to finish, and the sender finds it obsolete.
        if ((await queue.remove(reminderJobId(plannedId))) === 1) {
          await queueRedis.srem(key, plannedId);
        } else {
          log.info({ review: reviewId, reminder: plannedId }, 'reminder dropped from the plan is being sent; left to finish');
        }
      }
      if (wanted.size === 0) return;

      // Remembered before it is queued: a crash in between leaves an id to prune, never a job
      // that no later sync could take back.
      await queueRedis.sadd(key, ...wanted.keys());
      const nowMs = now().getTime();
      await queue.addBulk(
        plan.map((p) => ({
          name: JOB_NAME,
          data: p,
          opts: {
            // An id already in the queue makes the add a no-op: syncing the same plan is idempotent.
            jobId: reminderJobId(p.id),
            delay: Math.max(0, Date.parse(p.sendAt) - nowMs),
            attempts: retry.attempts,
            backoff: { type: 'exponential', delay: retry.backoffMs },
            // Finished jobs go at once: a kept one would silently swallow a later add with the
            // same id (a review moved back to a date it had), and ReminderSent/ReminderFailed are
            // the record, not the queue.
            removeOnComplete: true,
            removeOnFail: true,
          },
        })),
      );
    },

    async pending() {
      const jobs = await queue.getJobs(['delayed', 'waiting']);
      // A job can vanish between listing and loading; BullMQ leaves a hole for it.
      return jobs.filter((j): j is NonNullable<typeof j> => Boolean(j)).map((j) => j.data.id);
    },

    async intact() {
      await queue.waitUntilReady();
      return (await queueRedis.exists(intactKey)) === 1;
    },

    async markIntact() {
      await queue.waitUntilReady();
      await queueRedis.set(intactKey, new Date().toISOString());
    },

    close() {
      closing ??= (async () => {
        // The worker first: it waits for the sends in flight, which may still use the queue.
        await worker.close();
        await queue.close();
        await Promise.allSettled([queueRedis.quit(), workerRedis.quit()]);
      })();
      return closing;
    },
  };
}
