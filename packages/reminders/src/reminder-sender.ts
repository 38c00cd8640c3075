// The job processor: a plain function that sends one planned reminder, testable without any
// queue. It re-plans from the review's stream before sending, so an obsolete job (the review
// moved, was cancelled or held, or the reminder went out already) sends nothing; after SMTP
// accepted the mail it appends ReminderSent with an event id derived from the send, so a
// retried job cannot record it twice.
//
// The one window where a crash doubles a mail: SMTP accepted it and the process died before
// ReminderSent was appended. The retry sends it again (same Message-ID, so clients can tell),
// then records it once; at most one extra mail per send.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { foldReview, reviewDecider, reviewStream, type ExistingReview, type ReviewCommand, type ReviewEvent, type ReviewState } from '@cm/domain';
import { eventIdFrom, runCommand, toTimed, type EventStore } from '@cm/event-store';
import { reviewAgenda, type ReadStore } from '@cm/read-models';
import type { Mailer } from './mailer';
import { renderReminder } from './reminder-mail';
import { planReminders, type PlannedReminder, type ReminderOffset } from './reminder-planning';

export type SendOutcome = 'sent' | 'obsolete';

export type ReminderSenderDeps = {
  eventStore: EventStore;
  readStore: ReadStore;
  mailer: Mailer;
  offsets: readonly ReminderOffset[];
  now: () => Date;
  publicUrl: string | null;
  logger: Logger;
};

export async function loadReview(eventStore: EventStore, reviewId: string): Promise<{ state: ReviewState; revision: number }> {
  const events = await eventStore.readStream(reviewStream(reviewId));
  return { state: foldReview(events.map((e) => toTimed<ReviewEvent>(e))), revision: events.length - 1 };
}

/** Appends a reminder record through the command runner; the seed makes a retried record a no-op. */
async function record(eventStore: EventStore, reviewId: string, seed: string, command: ReviewCommand, occurredAt: string): Promise<void> {
  await runCommand(eventStore, reviewStream(reviewId), reviewDecider, command, {
    actor: 'reminders',
    occurredAt,
    correlationId: eventIdFrom(seed),
    idempotencyScope: seed,
    ifMatch: null,
  });
}

export function createReminderSender(deps: ReminderSenderDeps) {
  const log = deps.logger.child({ component: 'reminders' });

  return {
    /** Sends the reminder if it is still due under the current plan. Throws on SMTP failure (to be retried). */
    async send(job: Pick<PlannedReminder, 'id' | 'reviewId'>): Promise<SendOutcome> {
      const now = deps.now().toISOString();
      const { state } = await loadReview(deps.eventStore, job.reviewId);
      if (!state.exists) return 'obsolete';
      const current = planReminders(state, deps.offsets, now).find((p) => p.id === job.id && p.sendAt <= now);
      if (!current) {
        log.debug({ reminder: job.id }, 'reminder no longer due under the current plan; nothing sent');
        return 'obsolete';
      }
      const review: ExistingReview = state;
      const agreements = await deps.readStore.getAgreements(review.agreementIds);
      const mail = renderReminder({ review, agenda: reviewAgenda(review, agreements, now), reminder: current, publicUrl: deps.publicUrl, now });
      const messageId = `<${createHash('sha256').update(current.id).digest('hex').slice(0, 32)}@commitment-monitor>`;
      const sent = await deps.mailer.send({ to: current.email, ...(current.name ? { toName: current.name } : {}), subject: mail.subject, text: mail.text, html: mail.html, messageId });
      await record(deps.eventStore, review.id, `reminder-sent|${current.id}`, {
        type: 'RecordReminderSent',
        scheduledFor: current.scheduledFor,
        offset: current.offset,
        email: current.email,
        sentAt: deps.now().toISOString(),
        ...(current.covers.length > 1 ? { covers: current.covers } : {}),
        messageId: sent.messageId,
      }, deps.now().toISOString());
      log.info({ review: review.id, offset: current.offset, covers: current.covers, scheduledFor: current.scheduledFor }, 'reminder sent');
      return 'sent';
    },

    /** After the last attempt: the failure goes on the record, visible in the review's detail. */
    async fail(job: PlannedReminder, error: unknown, attempts: number): Promise<void> {
      const message = error instanceof Error ? error.message : String(error);
      log.error({ review: job.reviewId, offset: job.offset, attempts, err: error }, 'reminder failed after its last attempt');
      await record(deps.eventStore, job.reviewId, `reminder-failed|${job.id}`, {
        type: 'RecordReminderFailed',
        scheduledFor: job.scheduledFor,
        offset: job.offset,
        email: job.email,
        failedAt: deps.now().toISOString(),
        attempts,
        error: message.slice(0, 500),
      }, deps.now().toISOString());
    },
  };
}
export type ReminderSender = ReturnType<typeof createReminderSender>;
