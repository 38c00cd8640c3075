// The documents the ledger projection keeps: one per agreement, one per review. Anything that
// depends on "now" (overdue, agreement status, next review) is computed when read, not stored.
import type { ExistingAgreement, ExistingReview, ReviewStatus } from '@cm/domain';
import type { Position } from '@cm/event-store';

export type ReviewRef = { id: string; title: string; scheduledFor: string; status: ReviewStatus };

export type AgreementDoc = {
  agreement: ExistingAgreement;
  revision: number;
  position: Position;
  createdAt: string;
  /** recordedAt of the stream's last event. */
  updatedAt: string;
  reviews: ReviewRef[];
};

export type ReviewDoc = {
  review: ExistingReview;
  revision: number;
  position: Position;
  createdAt: string;
  updatedAt: string;
};

export type ProjectionChanges = {
  agreements: Map<string, AgreementDoc>;
  reviews: Map<string, ReviewDoc>;
};
