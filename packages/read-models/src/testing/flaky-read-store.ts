// A read store whose commits can be made to fail on demand, to show the projector retries a
// batch and that a replayed batch neither loses nor doubles anything.
// Test helper only (not exported from index.ts).
import type { ReadStore } from '../read-store.js';

export type FailureMode =
  /** The write never happens (the store is down). */
  | 'before-writing'
  /** The write happens but its acknowledgement is lost (a crash right after the commit). */
  | 'after-writing';

export function createFlakyReadStore(inner: ReadStore) {
  let toFail = 0;
  let mode: FailureMode = 'before-writing';
  let failed = 0;
  let commits = 0;
  const store: ReadStore = {
    ...inner,
    async commit(changes, checkpoint, options) {
      commits++;
      if (toFail > 0) {
        toFail--;
        failed++;
        if (mode === 'after-writing') await inner.commit(changes, checkpoint, options);
        throw new Error(`read store commit failed (${mode})`);
      }
      await inner.commit(changes, checkpoint, options);
    },
  };
  return {
    store,
    /** The next `count` commits fail, in the given way. */
    failNext(count: number, how: FailureMode = 'before-writing') {
      toFail = count;
      mode = how;
    },
    /** Commits still to fail: 0 once every planned failure happened. */
    get pendingFailures() {
      return toFail;
    },
    get failedCommits() {
      return failed;
    },
    get commitCalls() {
      return commits;
    },
  };
}
