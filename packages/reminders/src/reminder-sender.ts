// The job processor: a plain function that sends one planned reminder, testable without any
// queue. It re-plans from the review's stream before sending, so an obsolete job (the review
// moved, was cancelled or held, or the reminder went out already) sends nothing; after SMTP
// accepted the mail it appends ReminderSent with an event id derived from the send, so a
// retried job cannot record it twice.
//
// Sending and recording are retried apart (see send-ledger.ts): the send is claimed once per
// planned id before SMTP, a "sent" marker is written as soon as SMTP accepted the mail, and a
// job that finds the marker only records. A failed append (busy stream, busy SQLite, timeout)
// is retried on its own, then by the job's retries, and never mails again.
//
// The one window left where a mail doubles: SMTP accepted it and the process died before the
// marker was written (or the ledger lost it with Redis). The retry sends it again (same
// Message-ID, so clients can tell), then records it once.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { agreementStream, foldReview, reviewDecider, reviewStream, type ExistingReview, type ReviewCommand, type ReviewEvent, type ReviewState } from '@cm/domain';
import { eventIdFrom, runCommand, toTimed, type EventStore } from '@cm/event-store';
import { foldAgreementEvents, reviewAgenda } from '@cm/read-models';
import type { Mailer } from './mailer.js';
import { SendInProgressError } from './reminder-scheduler.js';
import { createMemorySendLedger, type SendLedger, type SentMarker } from './send-ledger.js';
import { renderReminder } from './reminder-mail.js';
import { planReminders, type PlannedReminder, type ReminderOffset } from './reminder-planning.js';

export type SendOutcome = 'sent' | 'obsolete';

/** Longer than one SMTP send can take (three 10 s timeouts); a claim outliving its holder lapses then. */
export const SEND_CLAIM_TTL_MS = 60_000;
/** Appends of ReminderSent within one attempt, before the job's own retry takes over. */
const RECORD_ATTEMPTS = 3;
const RECORD_BACKOFF_MS = 50;

export type ReminderSenderDeps = {
  eventStore: EventStore;
  mailer: Mailer;
  offsets: readonly ReminderOffset[];
  now: () => Date;
  publicUrl: string | null;
  logger: Logger;
  /** Claims and "sent" markers; shared through Redis when several processes send. */
  ledger?: SendLedger;
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
  const ledger = deps.ledger ?? createMemorySendLedger(deps.now);

  type Sendable = Pick<PlannedReminder, 'scheduledFor' | 'offset' | 'email'> & { id: string; reviewId: string; covers?: string[] };

  /** ReminderSent for a mail that went out, retried on its own: the mail is never sent again for it. */
  async function recordSent(reminder: Sendable, marker: SentMarker): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await record(deps.eventStore, reminder.reviewId, `reminder-sent|${reminder.id}`, {
          type: 'RecordReminderSent',
          scheduledFor: reminder.scheduledFor,
          offset: reminder.offset,
          email: reminder.email,
          sentAt: marker.sentAt,
          ...(reminder.covers && reminder.covers.length > 1 ? { covers: reminder.covers } : {}),
          messageId: marker.messageId,
        }, deps.now().toISOString());
        return;
      } catch (err) {
        if (attempt >= RECORD_ATTEMPTS) throw err;
        log.warn({ err, reminder: reminder.id, attempt }, 'recording a sent reminder failed; retrying the record only');
        await new Promise((r) => setTimeout(r, RECORD_BACKOFF_MS * attempt));
      }
    }
  }

  /** The marker outlives this attempt; a failure to write it is logged, and the record still tried. */
  async function markSent(id: string, marker: SentMarker): Promise<void> {
    await ledger.markSent(id, marker).catch((err: unknown) => log.error({ err, reminder: id }, 'could not mark a sent reminder; a retry may mail it again'));
  }

  return {
    /** Sends the reminder if it is still due under the current plan. Throws on SMTP failure (to be retried). */
    async send(job: Pick<PlannedReminder, 'id' | 'reviewId'> & Partial<PlannedReminder>): Promise<SendOutcome> {
      const already = await ledger.sentMarker(job.id);
      if (already && job.scheduledFor && job.offset && job.email) {
        // It went out on an earlier attempt (or in another process); only the record is missing.
        await recordSent(job as Sendable, already);
        return 'sent';
      }
      const now = deps.now().toISOString();
      const { state } = await loadReview(deps.eventStore, job.reviewId);
      if (!state.exists) return 'obsolete';
      const current = planReminders(state, deps.offsets, now).find((p) => p.id === job.id && p.sendAt <= now);
      if (!current) {
        log.debug({ reminder: job.id }, 'reminder no longer due under the current plan; nothing sent');
        return 'obsolete';
      }
      if (!(await ledger.claim(current.id, SEND_CLAIM_TTL_MS))) throw new SendInProgressError(current.id);
      let marker: SentMarker;
      try {
        // Looked at again under the claim: a holder that finished just before we claimed left it.
        const sentMeanwhile = await ledger.sentMarker(current.id);
        if (sentMeanwhile) {
          marker = sentMeanwhile;
        } else {
          const review: ExistingReview = state;
          // From the log, not the read models: a projection that lags would send an old agenda.
          const agreements = await agendaAgreements(deps.eventStore, review.agreementIds);
          const mail = renderReminder({ review, agenda: reviewAgenda(review, agreements, now), reminder: current, publicUrl: deps.publicUrl, now });
          const messageId = `<${createHash('sha256').update(current.id).digest('hex').slice(0, 32)}@commitment-monitor>`;
          const sent = await deps.mailer.send({ to: current.email, ...(current.name ? { toName: current.name } : {}), subject: mail.subject, text: mail.text, html: mail.html, messageId });
          marker = { messageId: sent.messageId, sentAt: deps.now().toISOString() };
          await markSent(current.id, marker);
        }
      } finally {
        // Released whatever happened: after a refused send the retry may go at once; after a sent
        // one the marker, not the claim, keeps it from going again.
        await ledger.release(current.id).catch(() => undefined);
      }
      await recordSent(current, marker);
      log.info({ review: current.reviewId, offset: current.offset, covers: current.covers, scheduledFor: current.scheduledFor }, 'reminder sent');
      return 'sent';
    },

    /** After the last attempt: the failure goes on the record, visible in the review's detail; a mail that went out is recorded as sent. */
    async fail(job: PlannedReminder, error: unknown, attempts: number): Promise<void> {
      const marker = await ledger.sentMarker(job.id).catch(() => null);
      if (marker) {
        log.error({ review: job.reviewId, offset: job.offset, attempts, err: error }, 'recording a sent reminder failed on every attempt; one more try');
        await recordSent(job, marker);
        return;
      }
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

/** The agreements a review covers, folded from their streams as the log holds them now. */
async function agendaAgreements(eventStore: EventStore, ids: readonly string[]) {
  const folded = await Promise.all(ids.map(async (id) => [id, foldAgreementEvents(await eventStore.readStream(agreementStream(id)))] as const));
  return new Map(folded.flatMap(([id, state]) => (state.exists ? [[id, { agreement: state }] as const] : [])));
}
