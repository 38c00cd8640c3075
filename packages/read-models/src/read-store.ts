// The read-store port: documents plus the projection checkpoint, changed together in one
// atomic commit so a crash can never leave documents ahead of or behind the checkpoint.
import type { Position } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc } from './documents';
import type { ListQueries } from './queries';

export { createMemoryReadStore } from './memory-read-store';

export type CommitOptions = {
  /** Write only while `key` still holds `token` (the projection lease): a stale holder cannot write. */
  fence?: { key: string; token: string };
};

export interface ReadStore extends ListQueries {
  checkpoint(): Promise<Position | null>;
  getAgreements(ids: Iterable<string>): Promise<Map<string, AgreementDoc>>;
  getReviews(ids: Iterable<string>): Promise<Map<string, ReviewDoc>>;
  /** Every document: for rebuild checks and exports, never for answering a request. */
  allAgreements(): Promise<AgreementDoc[]>;
  allReviews(): Promise<ReviewDoc[]>;
  /** Writes the changed documents and moves the checkpoint, all or nothing. */
  commit(changes: ProjectionChanges, checkpoint: Position, options?: CommitOptions): Promise<void>;
  /** Called after each commit with the new checkpoint (same process only). */
  onCommit(listener: (checkpoint: Position) => void): () => void;
  close(): Promise<void>;
}
