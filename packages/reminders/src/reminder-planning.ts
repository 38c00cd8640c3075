// Reminder planning, pure: which e-mails a review should still get, and when. One send per
// (scheduled date, offset, attendee); offsets already due when planning collapse into one send
// at once per attendee; nothing for a review that is not scheduled; nothing already sent.
import { reminderAlreadySent, type ExistingReview, type Locale } from '@cm/domain';

export type ReminderOffset = { label: string; ms: number };

export type PlannedReminder = {
  /** Deterministic: the same send always gets the same id (queue job id, event id seed). */
  id: string;
  reviewId: string;
  scheduledFor: string;
  /** The offset this send is recorded under; for a collapsed send, the most urgent due one. */
  offset: string;
  /** Every offset this send stands for (more than one when several were due at once). */
  covers: string[];
  email: string;
  name: string | null;
  locale: Locale;
  /** When to send; `now` for what is already due. */
  sendAt: string;
};

/**
 * A send that failed for good (its last attempt recorded as ReminderFailed) is planned again,
 * in the running process, after 15 minutes, then 30, 60... up to 6 hours between rounds, and
 * given up after this many rounds (each failure stays visible on the review).
 */
export const FAILED_SEND_RETRY = { firstDelayMs: 15 * 60_000, maxDelayMs: 6 * 3_600_000, rounds: 6 } as const;

export function reminderId(reviewId: string, scheduledFor: string, offset: string, email: string): string {
  return `${reviewId}|${scheduledFor}|${offset}|${email.toLowerCase()}`;
}

export function planReminders(
  review: Pick<ExistingReview, 'id' | 'status' | 'scheduledFor' | 'attendees' | 'reminders'> & Partial<Pick<ExistingReview, 'reminderFailures'>>,
  offsets: readonly ReminderOffset[],
  now: string,
): PlannedReminder[] {
  if (review.status !== 'scheduled' || review.scheduledFor <= now) return [];
  const meeting = Date.parse(review.scheduledFor);
  const nowMs = Date.parse(now);
  // Most urgent (smallest offset) last, so a collapsed send is recorded under it.
  const sorted = [...offsets].sort((a, b) => b.ms - a.ms);
  const plan: PlannedReminder[] = [];
  for (const attendee of review.attendees) {
    const unsent = sorted.filter((o) => !reminderAlreadySent(review.reminders, review.scheduledFor, o.label, attendee.email));
    const due = unsent.filter((o) => meeting - o.ms <= nowMs);
    const later = unsent.filter((o) => meeting - o.ms > nowMs);
    const base = { reviewId: review.id, scheduledFor: review.scheduledFor, email: attendee.email, name: attendee.name ?? null, locale: attendee.locale ?? 'en' } as const;
    if (due.length > 0) {
      const offset = due.at(-1)!.label;
      const covers = due.map((o) => o.label);
      const retryAt = afterFailures(review, attendee.email, covers, nowMs);
      if (retryAt !== 'given up') {
        plan.push({ ...base, id: reminderId(review.id, review.scheduledFor, offset, attendee.email), offset, covers, sendAt: retryAt ?? now });
      }
    }
    for (const o of later) {
      plan.push({
        ...base,
        id: reminderId(review.id, review.scheduledFor, o.label, attendee.email),
        offset: o.label,
        covers: [o.label],
        sendAt: new Date(meeting - o.ms).toISOString(),
      });
    }
  }
  return plan.sort((a, b) => a.sendAt.localeCompare(b.sendAt) || a.id.localeCompare(b.id));
}

/** When a due send whose earlier rounds failed may go again: null if none failed, 'given up' after the last round. */
function afterFailures(
  review: Pick<ExistingReview, 'scheduledFor'> & Partial<Pick<ExistingReview, 'reminderFailures'>>,
  email: string,
  covers: readonly string[],
  nowMs: number,
): string | null | 'given up' {
  const who = email.toLowerCase();
  const failures = (review.reminderFailures ?? []).filter((f) => f.scheduledFor === review.scheduledFor && f.email.toLowerCase() === who && covers.includes(f.offset));
  if (failures.length === 0) return null;
  if (failures.length >= FAILED_SEND_RETRY.rounds) return 'given up';
  const last = Math.max(...failures.map((f) => Date.parse(f.failedAt)));
  const delay = Math.min(FAILED_SEND_RETRY.firstDelayMs * 2 ** (failures.length - 1), FAILED_SEND_RETRY.maxDelayMs);
  return new Date(Math.max(nowMs, last + delay)).toISOString();
}
