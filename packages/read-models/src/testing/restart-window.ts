// Drives the projector into the window between a batch refused because the read models switched
// generation and its resubscription, and calls stop() there: either right after the refusal
// (before the resubscription runs) or while the resubscription reads the checkpoint.
// Every later commit fails, so a subscription left open retries for as long as it lives.
// Test helper only (not exported from index.ts).
import { GenerationChangedError, type ReadStore } from '../read-store.js';

export type StopPoint = 'after-the-refused-batch' | 'while-resubscribing';

export function createRestartWindowStore(inner: ReadStore, at: StopPoint, stop: () => Promise<void>) {
  let calls = 0;
  let checkpointReads = 0;
  let commits = 0;
  let stopping: Promise<void> | null = null;
  const store: ReadStore = {
    ...inner,
    async checkpoint() {
      calls++;
      // The first read is the start; the second, the resubscription after the refused batch.
      if (++checkpointReads === 2 && at === 'while-resubscribing') stopping = stop();
      return inner.checkpoint();
    },
    async getReviews(ids) {
      calls++;
      return inner.getReviews(ids);
    },
    async getAgreements(ids) {
      calls++;
      return inner.getAgreements(ids);
    },
    async commit() {
      calls++;
      if (++commits > 1) throw new Error('read store commit failed (after the generation switch)');
      // Runs once the refusal below has been handled (all of it is promise callbacks), before
      // the resubscription the handler schedules: stop() lands exactly between the two.
      if (at === 'after-the-refused-batch') setImmediate(() => (stopping = stop()));
      throw new GenerationChangedError('the read models were switched from generation 1 to 2');
    },
  };
  return {
    store,
    /** Every call the projector made on the read store. */
    get calls() {
      return calls;
    },
    /** The stop() called in the window, once it was called. */
    stopped: async (): Promise<void> => {
      while (!stopping) await new Promise((r) => setTimeout(r, 5));
      await stopping;
    },
  };
}
