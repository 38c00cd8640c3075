// The review decider: a review meeting's stream. Pure: `now` arrives in the command.
import type { Assessment, ReviewEvent, Timed } from './events';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from './errors';
import type { Attendee, ReviewStatus } from './primitives';

export type ReminderRecord = { scheduledFor: string; offset: string; email: string; sentAt: string; covers?: string[] | undefined; messageId?: string | undefined };
export type ReminderFailure = { scheduledFor: string; offset: string; email: string; failedAt: string; attempts: number; error: string };

/** Whether a reminder for (scheduledFor, offset, email) went out, alone or within a collapsed one. */
export function reminderAlreadySent(reminders: readonly ReminderRecord[], scheduledFor: string, offset: string, email: string): boolean {
  const who = email.toLowerCase();
  return reminders.some(
    (x) => x.scheduledFor === scheduledFor && x.email.toLowerCase() === who && (x.offset === offset || (x.covers ?? []).includes(offset)),
  );
}

export type ReviewState =
  | { exists: false }
  | {
      exists: true;
      id: string;
      title: string;
      scheduledFor: string;
      status: ReviewStatus;
      agreementIds: string[];
      attendees: Attendee[];
      location: string | null;
      heldAt: string | null;
      summary: string | null;
      assessments: Assessment[];
      cancellationReason: string | null;
      /** Bumped on every reschedule or cancellation: the iCalendar SEQUENCE. */
      sequence: number;
      reminders: ReminderRecord[];
      reminderFailures: ReminderFailure[];
    };
export type ExistingReview = Extract<ReviewState, { exists: true }>;

export type ReviewCommand =
  | {
      type: 'ScheduleReview';
      now: string;
      reviewId: string;
      title: string;
      scheduledFor: string;
      agreementIds: string[];
      attendees: Attendee[];
      location?: string | undefined;
    }
  | { type: 'RescheduleReview'; now: string; scheduledFor: string; reason?: string | undefined }
  | { type: 'CancelReview'; reason: string }
  | { type: 'RecordReviewOutcome'; now: string; heldAt: string; summary?: string | undefined; assessments: Assessment[] }
  | { type: 'RecordReminderSent'; scheduledFor: string; offset: string; email: string; sentAt: string; covers?: string[] | undefined; messageId?: string | undefined }
  | { type: 'RecordReminderFailed'; scheduledFor: string; offset: string; email: string; failedAt: string; attempts: number; error: string };

export const initialReviewState = (): ReviewState => ({ exists: false });

function requireScheduled(state: ReviewState): ExistingReview {
  if (!state.exists) throw new NotFoundError('review not found', 'review_not_found');
  if (state.status !== 'scheduled') throw new ConflictError(`review ${state.id} is ${state.status}`, `review_${state.status}`);
  return state;
}

export function decideReview(command: ReviewCommand, state: ReviewState): ReviewEvent[] {
  switch (command.type) {
    case 'ScheduleReview': {
      if (state.exists) throw new ConflictError(`review ${command.reviewId} already exists`, 'review_exists');
      const errors: FieldError[] = [];
      if (command.scheduledFor <= command.now) errors.push({ path: 'scheduledFor', message: 'must be in the future' });
      if (command.agreementIds.length === 0) errors.push({ path: 'agreementIds', message: 'must name at least one agreement' });
      if (new Set(command.agreementIds).size !== command.agreementIds.length) errors.push({ path: 'agreementIds', message: 'must not repeat an agreement' });
      if (command.attendees.length === 0) errors.push({ path: 'attendees', message: 'must name at least one attendee' });
      const emails = command.attendees.map((a) => a.email.toLowerCase());
      if (new Set(emails).size !== emails.length) errors.push({ path: 'attendees', message: 'must not repeat an e-mail address' });
      if (errors.length) throw new ValidationError('the review is not valid', errors);
      return [
        {
          type: 'ReviewScheduled',
          data: {
            reviewId: command.reviewId,
            title: command.title,
            scheduledFor: command.scheduledFor,
            agreementIds: command.agreementIds,
            attendees: command.attendees,
            ...(command.location !== undefined ? { location: command.location } : {}),
          },
        },
      ];
    }
    case 'RescheduleReview': {
      const r = requireScheduled(state);
      if (command.scheduledFor <= command.now) {
        throw new ValidationError('the new date is in the past', [{ path: 'scheduledFor', message: 'must be in the future' }]);
      }
      if (command.scheduledFor === r.scheduledFor) return [];
      return [
        {
          type: 'ReviewRescheduled',
          data: {
            previousScheduledFor: r.scheduledFor,
            scheduledFor: command.scheduledFor,
            ...(command.reason !== undefined ? { reason: command.reason } : {}),
          },
        },
      ];
    }
    case 'CancelReview': {
      requireScheduled(state);
      return [{ type: 'ReviewCancelled', data: { reason: command.reason } }];
    }
    case 'RecordReviewOutcome': {
      const r = requireScheduled(state);
      const errors: FieldError[] = [];
      if (command.heldAt > command.now) errors.push({ path: 'heldAt', message: 'must not be in the future' });
      command.assessments.forEach((a, i) => {
        if (!r.agreementIds.includes(a.agreementId)) {
          errors.push({ path: `assessments.${i}.agreementId`, message: `agreement ${a.agreementId} is not in this review's scope` });
        }
      });
      if (errors.length) throw new ValidationError('the outcome is not valid', errors);
      return [
        {
          type: 'ReviewHeld',
          data: {
            heldAt: command.heldAt,
            ...(command.summary !== undefined ? { summary: command.summary } : {}),
            assessments: command.assessments,
          },
        },
      ];
    }
    case 'RecordReminderSent': {
      if (!state.exists) throw new NotFoundError('review not found', 'review_not_found');
      if (reminderAlreadySent(state.reminders, command.scheduledFor, command.offset, command.email)) return [];
      const { type: _type, ...data } = command;
      return [{ type: 'ReminderSent', data: Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined)) as typeof data & { covers?: string[] } }];
    }
    case 'RecordReminderFailed': {
      if (!state.exists) throw new NotFoundError('review not found', 'review_not_found');
      if (reminderAlreadySent(state.reminders, command.scheduledFor, command.offset, command.email)) return [];
      const { type: _type, ...data } = command;
      return [{ type: 'ReminderFailed', data }];
    }
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${(unknown as { type: string }).type}`);
    }
  }
}

export function evolveReview(state: ReviewState, event: Timed<ReviewEvent>): ReviewState {
  if (event.type === 'ReviewScheduled') {
    const d = event.data;
    return {
      exists: true,
      id: d.reviewId,
      title: d.title,
      scheduledFor: d.scheduledFor,
      status: 'scheduled',
      agreementIds: d.agreementIds,
      attendees: d.attendees,
      location: d.location ?? null,
      heldAt: null,
      summary: null,
      assessments: [],
      cancellationReason: null,
      sequence: 0,
      reminders: [],
      reminderFailures: [],
    };
  }
  if (!state.exists) return state;
  switch (event.type) {
    case 'ReviewRescheduled':
      return { ...state, scheduledFor: event.data.scheduledFor, sequence: state.sequence + 1 };
    case 'ReviewCancelled':
      return { ...state, status: 'cancelled', cancellationReason: event.data.reason, sequence: state.sequence + 1 };
    case 'ReviewHeld':
      return { ...state, status: 'held', heldAt: event.data.heldAt, summary: event.data.summary ?? null, assessments: event.data.assessments };
    case 'ReminderSent':
      return { ...state, reminders: [...state.reminders, event.data] };
    case 'ReminderFailed':
      return { ...state, reminderFailures: [...state.reminderFailures, event.data] };
    default: {
      const unknown: never = event;
      throw new Error(`unknown event ${(unknown as { type: string }).type}`);
    }
  }
}

export function foldReview(events: Iterable<Timed<ReviewEvent>>): ReviewState {
  let s = initialReviewState();
  for (const e of events) s = evolveReview(s, e);
  return s;
}
