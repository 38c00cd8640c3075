// The review decider: a review meeting's stream. Pure: `now` arrives in the command.
import type { Assessment, ReviewEvent, Timed } from './events.js';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from './errors.js';
import type { Attendee, ReviewStatus } from './primitives.js';

export type ReminderRecord = { scheduledFor: string; offset: string; email: string; sentAt: string; covers?: string[] | undefined; messageId?: string | undefined };
export type ReminderFailure = { scheduledFor: string; offset: string; email: string; failedAt: string; attempts: number; error: string };

/** Whether a reminder for (scheduledFor, offset, email) went out, alone or within a collapsed one. */
export function reminderAlreadySent(reminders: readonly ReminderRecord[], scheduledFor: string, offset: string, email: string): boolean {
  const who = email.toLowerCase();
  return reminders.some(
    (x) => x.scheduledFor === scheduledFor && x.email.toLowerCase() === who && (x.offset === offset || (x.covers ?? []).includes(offset)),
  );
}

/** What one side of a joint review asked for, waiting for the other parties to confirm. */
export type PendingCancellation = { byParties: string[]; reason: string; proposedAt: string };
export type PendingOutcome = { byParties: string[]; heldAt: string; summary: string | null; assessments: Assessment[]; proposedAt: string };

/**
 * Who asks, on a joint review: the review's parties (of its agreements) and the parties the
 * caller acts for (null: all, as an admin does). Absent: the command takes effect at once.
 */
export type JointActors = { reviewParties?: readonly string[] | undefined; actingParties?: readonly string[] | null | undefined };

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
      pendingCancellation: PendingCancellation | null;
      pendingOutcome: PendingOutcome | null;
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
  | ({ type: 'CancelReview'; reason: string } & JointActors)
  | ({ type: 'RecordReviewOutcome'; now: string; heldAt: string; summary?: string | undefined; assessments: Assessment[] } & JointActors)
  | ({ type: 'ConfirmReviewProposal'; now: string; proposal: 'cancellation' | 'outcome' } & JointActors)
  | { type: 'RecordReminderSent'; scheduledFor: string; offset: string; email: string; sentAt: string; covers?: string[] | undefined; messageId?: string | undefined }
  | { type: 'RecordReminderFailed'; scheduledFor: string; offset: string; email: string; failedAt: string; attempts: number; error: string };

export const initialReviewState = (): ReviewState => ({ exists: false });

function requireScheduled(state: ReviewState): ExistingReview {
  if (!state.exists) throw new NotFoundError('review not found', 'review_not_found');
  if (state.status !== 'scheduled') throw new ConflictError(`review ${state.id} is ${state.status}`, `review_${state.status}`);
  return state;
}

/** The review parties the caller speaks for. */
function speaksFor(c: JointActors): string[] {
  const all = [...(c.reviewParties ?? [])];
  return c.actingParties == null ? all : all.filter((p) => c.actingParties!.includes(p));
}
const covers = (c: JointActors, agreed: readonly string[]) => c.actingParties == null || (c.reviewParties ?? []).every((p) => agreed.includes(p));
const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])].sort();

function ownProposal(r: ExistingReview, what: string, by: readonly string[]): never {
  throw new ConflictError(
    `the ${what} of review ${r.id} was proposed by ${by.join(', ')}; it takes effect when another of the review's parties confirms it`,
    'own_proposal',
  );
}

function sameOutcome(p: PendingOutcome, heldAt: string, summary: string | undefined, assessments: Assessment[]): boolean {
  return p.heldAt === heldAt && p.summary === (summary ?? null) && JSON.stringify(p.assessments) === JSON.stringify(assessments);
}

function heldEvent(heldAt: string, summary: string | null | undefined, assessments: Assessment[]): ReviewEvent {
  return { type: 'ReviewHeld', data: { heldAt, ...(summary != null ? { summary } : {}), assessments } };
}

function outcomeProposed(byParties: string[], heldAt: string, summary: string | null | undefined, assessments: Assessment[]): ReviewEvent {
  return { type: 'ReviewOutcomeProposed', data: { byParties, heldAt, ...(summary != null ? { summary } : {}), assessments } };
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
      const r = requireScheduled(state);
      const by = speaksFor(command);
      const prior = r.pendingCancellation?.byParties ?? [];
      const agreed = union(prior, by);
      if (covers(command, agreed)) return [{ type: 'ReviewCancelled', data: { reason: command.reason } }];
      if (r.pendingCancellation && agreed.length === prior.length) ownProposal(r, 'cancellation', prior);
      return [{ type: 'ReviewCancellationProposed', data: { byParties: agreed, reason: r.pendingCancellation?.reason ?? command.reason } }];
    }
    case 'ConfirmReviewProposal': {
      const r = requireScheduled(state);
      const pending = command.proposal === 'cancellation' ? r.pendingCancellation : r.pendingOutcome;
      if (!pending) throw new ConflictError(`review ${r.id} has no pending ${command.proposal} proposal`, 'no_pending_proposal');
      const by = speaksFor(command);
      const agreed = union(pending.byParties, by);
      if (command.actingParties != null && agreed.length === pending.byParties.length) ownProposal(r, command.proposal, pending.byParties);
      if (command.proposal === 'cancellation') {
        const c = pending as PendingCancellation;
        return covers(command, agreed)
          ? [{ type: 'ReviewCancelled', data: { reason: c.reason } }]
          : [{ type: 'ReviewCancellationProposed', data: { byParties: agreed, reason: c.reason } }];
      }
      const o = pending as PendingOutcome;
      if (o.heldAt > command.now) throw new ValidationError('the proposed outcome is not valid', [{ path: 'heldAt', message: 'must not be in the future' }]);
      return covers(command, agreed) ? [heldEvent(o.heldAt, o.summary, o.assessments)] : [outcomeProposed(agreed, o.heldAt, o.summary, o.assessments)];
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
      const by = speaksFor(command);
      const pending = r.pendingOutcome;
      // The other side sending the same outcome confirms it; a different one is a counter-proposal.
      const prior = pending && sameOutcome(pending, command.heldAt, command.summary, command.assessments) ? pending.byParties : [];
      const agreed = union(prior, by);
      if (covers(command, agreed)) return [heldEvent(command.heldAt, command.summary, command.assessments)];
      if (pending && prior.length > 0 && agreed.length === prior.length) ownProposal(r, 'outcome', prior);
      return [outcomeProposed(agreed, command.heldAt, command.summary, command.assessments)];
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
      pendingCancellation: null,
      pendingOutcome: null,
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
      return { ...state, status: 'cancelled', cancellationReason: event.data.reason, sequence: state.sequence + 1, pendingCancellation: null, pendingOutcome: null };
    case 'ReviewHeld':
      return { ...state, status: 'held', heldAt: event.data.heldAt, summary: event.data.summary ?? null, assessments: event.data.assessments, pendingCancellation: null, pendingOutcome: null };
    case 'ReviewCancellationProposed':
      return { ...state, pendingCancellation: { byParties: event.data.byParties, reason: event.data.reason, proposedAt: event.occurredAt } };
    case 'ReviewOutcomeProposed': {
      const d = event.data;
      return { ...state, pendingOutcome: { byParties: d.byParties, heldAt: d.heldAt, summary: d.summary ?? null, assessments: d.assessments, proposedAt: event.occurredAt } };
    }
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
