// The read-store port: documents plus the projection checkpoint, changed together in one
// atomic commit so a crash can never leave documents ahead of or behind the checkpoint.
import type { Position } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc } from './documents.js';
import type { ListQueries } from './queries.js';

export { createMemoryReadStore } from './memory-read-store.js';

/** A key that must still hold a token for a write to go ahead (the projection lease, the rebuild lock). */
export type Fence = { key: string; token: string };

export type CommitOptions = {
  /**
   * The position the batch starts after (the checkpoint its documents were read at; null for the
   * first batch). A store whose checkpoint is anywhere else refuses the batch: documents read at
   * another checkpoint, or a checkpoint lost (evicted, reset), would otherwise be overwritten by a
   * partial batch. A checkpoint already at or beyond the batch's end is a no-op: every checkpoint
   * was itself reached by commits that proved their start, so it covers this batch.
   */
  from: Position | null;
  /** Write only while `key` still holds `token` (the projection lease): a stale holder cannot write. */
  fence?: Fence;
};

/** Raised when the projection lease changed hands between reading and writing a batch. */
export class LeaseLostError extends Error {}

/**
 * Raised when the store is no longer where the writer thought (a rebuild switched readers to
 * another generation): the writer must restart from the store's checkpoint.
 */
export class GenerationChangedError extends Error {}

/**
 * Raised when a batch does not start at the stored checkpoint. Like a switched generation, the
 * writer restarts from the store's checkpoint (so the projector resubscribes instead of retrying
 * the same batch forever); nothing was written.
 */
export class CheckpointMismatchError extends GenerationChangedError {
  constructor(
    readonly from: Position | null,
    readonly to: Position,
    readonly stored: Position | null,
  ) {
    super(`batch after ${from ?? 'the start'} up to ${to} refused: the read store's checkpoint is ${stored ?? 'missing'}; restart from the stored checkpoint`);
  }
}

/**
 * Raised when the read models cannot be trusted any more (a checkpoint lost from a generation
 * that holds documents, a key of another type, a write that failed half-way): every commit is
 * refused until a rebuild replaces the generation.
 */
export class ReadModelsDamagedError extends Error {
  constructor(readonly reason: string) {
    super(`the read models are damaged (${reason}); run pnpm rebuild-read-models`);
  }
}

export interface ReadStore extends ListQueries {
  checkpoint(): Promise<Position | null>;
  getAgreements(ids: Iterable<string>): Promise<Map<string, AgreementDoc>>;
  getReviews(ids: Iterable<string>): Promise<Map<string, ReviewDoc>>;
  /** Every document: for rebuild checks and exports, never for answering a request. */
  allAgreements(): Promise<AgreementDoc[]>;
  allReviews(): Promise<ReviewDoc[]>;
  /** Writes the changed documents and moves the checkpoint from `options.from` to `checkpoint`, all or nothing. */
  commit(changes: ProjectionChanges, checkpoint: Position, options: CommitOptions): Promise<void>;
  /** Called after each commit with the new checkpoint (same process only). */
  onCommit(listener: (checkpoint: Position) => void): () => void;
  close(): Promise<void>;
}
