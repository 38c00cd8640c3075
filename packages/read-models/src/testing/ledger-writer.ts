// Writes valid ledger events into a real event store through the domain deciders, as the API's
// command runner does: read the stream, fold, decide, append at the expected revision.
// Test helper only (not exported from index.ts).
import { randomUUID } from 'node:crypto';
import {
  agreementStream, decideAgreement, decideReview, evolveAgreement, evolveReview, initialAgreementState, initialReviewState,
  reviewStream, type AgreementCommand, type AgreementEvent, type AgreementState, type ReviewCommand, type ReviewEvent,
  type ReviewState, type Timed,
} from '@cm/domain';
import type { AppendResult, EventStore, StoredEvent } from '@cm/event-store';

const timed = <E>(e: StoredEvent) => ({ type: e.type, data: e.data, occurredAt: e.metadata.occurredAt }) as unknown as Timed<E>;

/** Only `readStream` and `append` are used, so an in-memory log (see decided-ledger.ts) serves as well. */
export function createLedgerWriter(store: Pick<EventStore, 'readStream' | 'append'>) {
  async function run<S, C, E extends { type: string; data: unknown }>(
    stream: string,
    initial: () => S,
    evolve: (s: S, e: Timed<E>) => S,
    decide: (c: C, s: S) => E[],
    command: C,
    occurredAt: string,
  ): Promise<AppendResult> {
    const history = await store.readStream(stream);
    const state = history.reduce((s, e) => evolve(s, timed<E>(e)), initial());
    const events = decide(command, state);
    const revision = history.length - 1;
    return store.append(
      stream,
      events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: { actor: 'test', occurredAt, correlationId: randomUUID() } })),
      { expectedRevision: revision < 0 ? 'no_stream' : revision },
    );
  }
  return {
    agreement(id: string, command: AgreementCommand, occurredAt: string) {
      return run<AgreementState, AgreementCommand, AgreementEvent>(
        agreementStream(id), initialAgreementState, evolveAgreement, (c, st) => decideAgreement(c, st, occurredAt), command, occurredAt,
      );
    },
    review(id: string, command: ReviewCommand, occurredAt: string) {
      return run<ReviewState, ReviewCommand, ReviewEvent>(
        reviewStream(id), initialReviewState, evolveReview, decideReview, command, occurredAt,
      );
    },
  };
}
export type LedgerWriter = ReturnType<typeof createLedgerWriter>;
