// Hand-built StoredEvent values for the projection's unit specs: a tiny log that hands out
// increasing positions, per-stream revisions and recordedAt instants, as the event store would.
// Test helper only (not exported from index.ts).
import {
  agreementStream, reviewStream,
  type AgreementEvent, type Assessment, type Attendee, type DomainEvent, type ReviewEvent, type Session,
} from '@cm/domain';
import type { StoredEvent } from '@cm/event-store';

/** recordedAt of the first event a log hands out; each next event is one minute later. */
export const LOG_START = '2026-01-05T08:00:00.000Z';

export type SignOptions = {
  title?: string;
  sector?: string;
  parties?: string[];
  signedAt?: string;
  session?: Session;
};

export type StampOptions = { occurredAt?: string; recordedAt?: string; revision?: number };

export function createEventLog(start: string = LOG_START) {
  let position = 0;
  let clock = Date.parse(start);
  const revisions = new Map<string, number>();

  /** Any event on any stream, even one the ledger does not know. */
  function raw(stream: string, type: string, data: unknown, opts: StampOptions = {}): StoredEvent {
    const revision = opts.revision ?? (revisions.get(stream) ?? -1) + 1;
    revisions.set(stream, Math.max(revision, revisions.get(stream) ?? -1));
    position++;
    const recordedAt = opts.recordedAt ?? new Date(clock).toISOString();
    clock += 60_000;
    return {
      id: `evt-${position}`,
      stream,
      revision,
      position: String(position),
      type,
      data,
      metadata: { actor: 'test', occurredAt: opts.occurredAt ?? recordedAt, correlationId: `corr-${position}`, recordedAt },
      prevHash: '0'.repeat(64),
      hash: String(position).padStart(64, '0'),
    };
  }

  const onAgreement = (id: string, e: AgreementEvent, opts?: StampOptions) => raw(agreementStream(id), e.type, e.data, opts);
  const onReview = (id: string, e: ReviewEvent, opts?: StampOptions) => raw(reviewStream(id), e.type, e.data, opts);

  return {
    raw,
    domain(stream: string, e: DomainEvent, opts?: StampOptions) {
      return raw(stream, e.type, e.data, opts);
    },
    signed(agreementId: string, o: SignOptions = {}, opts?: StampOptions) {
      return onAgreement(agreementId, {
        type: 'AgreementSigned',
        data: {
          agreementId,
          title: o.title ?? `Agreement ${agreementId}`,
          kind: 'agreement',
          sector: o.sector ?? 'health',
          parties: o.parties ?? ['VEN', 'RUS'],
          signedAt: o.signedAt ?? '2025-11-28',
          ...(o.session ? { session: o.session } : {}),
        },
      }, opts);
    },
    added(
      agreementId: string,
      commitmentId: string,
      o: { dueDate?: string; party?: string; institution?: string; title?: string } = {},
      opts?: StampOptions,
    ) {
      return onAgreement(agreementId, {
        type: 'CommitmentAdded',
        data: {
          agreementId,
          commitmentId,
          title: o.title ?? `Deliver ${commitmentId}`,
          dueDate: o.dueDate ?? '2026-06-30',
          responsible: { party: o.party ?? 'VEN', institution: o.institution ?? 'Ministry of Health' },
        },
      }, opts);
    },
    progress(agreementId: string, commitmentId: string, percent: number, opts?: StampOptions) {
      return onAgreement(agreementId, { type: 'ProgressReported', data: { commitmentId, percent } }, opts);
    },
    implemented(agreementId: string, commitmentId: string, opts?: StampOptions) {
      return onAgreement(agreementId, { type: 'CommitmentImplemented', data: { commitmentId } }, opts);
    },
    delayed(agreementId: string, commitmentId: string, previousDueDate: string, newDueDate: string, opts?: StampOptions) {
      return onAgreement(agreementId, {
        type: 'CommitmentDelayed',
        data: { commitmentId, reason: 'funding arrived late', previousDueDate, newDueDate },
      }, opts);
    },
    cancelled(agreementId: string, commitmentId: string, opts?: StampOptions) {
      return onAgreement(agreementId, { type: 'CommitmentCancelled', data: { commitmentId, reason: 'superseded' } }, opts);
    },
    terminated(agreementId: string, opts?: StampOptions) {
      return onAgreement(agreementId, { type: 'AgreementTerminated', data: { reason: 'denounced by a party' } }, opts);
    },
    reviewed(agreementId: string, reviewId: string, heldAt: string, assessments: Assessment[] = [], opts?: StampOptions) {
      return onAgreement(agreementId, { type: 'AgreementReviewed', data: { reviewId, heldAt, assessments } }, opts);
    },
    scheduled(
      reviewId: string,
      scheduledFor: string,
      agreementIds: string[],
      o: { title?: string; attendees?: Attendee[] } = {},
      opts?: StampOptions,
    ) {
      return onReview(reviewId, {
        type: 'ReviewScheduled',
        data: {
          reviewId,
          title: o.title ?? `Review ${reviewId}`,
          scheduledFor,
          agreementIds,
          attendees: o.attendees ?? [{ email: 'desk@example.org' }],
        },
      }, opts);
    },
    rescheduled(reviewId: string, previousScheduledFor: string, scheduledFor: string, opts?: StampOptions) {
      return onReview(reviewId, { type: 'ReviewRescheduled', data: { previousScheduledFor, scheduledFor } }, opts);
    },
    reviewCancelled(reviewId: string, opts?: StampOptions) {
      return onReview(reviewId, { type: 'ReviewCancelled', data: { reason: 'no quorum' } }, opts);
    },
    held(reviewId: string, heldAt: string, assessments: Assessment[] = [], opts?: StampOptions) {
      return onReview(reviewId, { type: 'ReviewHeld', data: { heldAt, assessments } }, opts);
    },
    reminderSent(reviewId: string, scheduledFor: string, email: string, sentAt: string, opts?: StampOptions) {
      return onReview(reviewId, { type: 'ReminderSent', data: { scheduledFor, offset: '7d', email, sentAt } }, opts);
    },
  };
}
export type EventLog = ReturnType<typeof createEventLog>;
