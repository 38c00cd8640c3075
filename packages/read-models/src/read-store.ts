// The read-store port: documents plus the projection checkpoint, changed together in one
// atomic commit so a crash can never leave documents ahead of or behind the checkpoint.
import type { Position } from '@cm/event-store';
import type { AgreementDoc, ProjectionChanges, ReviewDoc } from './documents';
import { createScanQueries, type ListQueries } from './queries';

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

export function createMemoryReadStore(): ReadStore {
  const agreements = new Map<string, AgreementDoc>();
  const reviews = new Map<string, ReviewDoc>();
  let checkpoint: Position | null = null;
  const listeners = new Set<(p: Position) => void>();
  const pick = <T>(m: Map<string, T>, ids: Iterable<string>) => {
    const out = new Map<string, T>();
    for (const id of ids) {
      const d = m.get(id);
      if (d) out.set(id, d);
    }
    return out;
  };
  const scan = createScanQueries({
    allAgreements: async () => [...agreements.values()],
    allReviews: async () => [...reviews.values()],
  });
  return {
    ...scan,
    async checkpoint() {
      return checkpoint;
    },
    async getAgreements(ids) {
      return pick(agreements, ids);
    },
    async getReviews(ids) {
      return pick(reviews, ids);
    },
    async allAgreements() {
      return [...agreements.values()];
    },
    async allReviews() {
      return [...reviews.values()];
    },
    async commit(changes, next) {
      // Synchronous from here on: nothing else runs between the documents and the checkpoint.
      for (const [id, d] of changes.agreements) agreements.set(id, d);
      for (const [id, d] of changes.reviews) reviews.set(id, d);
      checkpoint = next;
      for (const l of listeners) l(next);
    },
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}
