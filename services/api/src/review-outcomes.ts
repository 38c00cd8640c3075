// A review outcome is whole or absent. Recording one appends ReviewHeld to the review stream and
// then AgreementReviewed to each agreement in scope: two appends on different streams, with a
// window between them (a crash, a failed append). The outcome completer closes it from the log:
// for every ReviewHeld whose agreements lack their AgreementReviewed, it appends what is missing.
//
// The route and the completer name the agreement events alike, from the review id, the
// ReviewHeld event id and the agreement id, so when both try (the completer sees ReviewHeld
// while the route is still writing) the store keeps the first and answers the other as a
// repeat: an agreement records a review once, whoever writes it.
import type { Logger } from 'pino';
import {
  AppError, agreementDecider, agreementStream, evolveReview, initialReviewState, parseStreamName, reviewStream,
  type AgreementState, type Assessment, type ReviewEvent, type ReviewState,
} from '@cm/domain';
import { runCommand, toTimed, type CommandResult, type EventStore, type StoredEvent, type Subscription } from '@cm/event-store';

/** Reviews checked at once when the completer starts. */
const SCAN_CONCURRENCY = 16;

type Held = { heldAt: string; assessments: Assessment[] };

/** The idempotency scope of one agreement's AgreementReviewed: the same outcome always names the same event. */
export function outcomeEventScope(reviewId: string, heldEventId: string, agreementId: string): string {
  return `review-outcome|${reviewId}|${heldEventId}|${agreementId}`;
}

/**
 * Records on one agreement's stream that the review was held, all of it taken from the ReviewHeld
 * event (whose metadata is the command's context), so the route and the completer write the same
 * event under the same id; a repeat appends nothing.
 */
export function recordReviewOnAgreement(eventStore: EventStore, reviewId: string, heldEvent: StoredEvent, agreementId: string): Promise<CommandResult<AgreementState>> {
  const held = heldEvent.data as Held;
  const { actor, occurredAt, correlationId } = heldEvent.metadata;
  return runCommand(eventStore, agreementStream(agreementId), agreementDecider, {
    type: 'RecordAgreementReview', reviewId, heldAt: held.heldAt, assessments: held.assessments,
  }, { actor, occurredAt, correlationId, idempotencyScope: outcomeEventScope(reviewId, heldEvent.id, agreementId), ifMatch: null });
}

/** The review's ReviewHeld event and the agreements in scope when it was held; null while not held. */
async function heldOutcome(eventStore: EventStore, reviewId: string): Promise<{ event: StoredEvent; agreementIds: string[] } | null> {
  let state: ReviewState = initialReviewState();
  for (const e of await eventStore.readStream(reviewStream(reviewId))) {
    state = evolveReview(state, toTimed<ReviewEvent>(e));
    if (e.type === 'ReviewHeld' && state.exists) return { event: e, agreementIds: state.agreementIds };
  }
  return null;
}

/**
 * Whether the agreement already records this review. Checked on the stream, not by event id:
 * outcomes recorded before the ids were derived this way carry other ids.
 */
async function agreementRecords(eventStore: EventStore, agreementId: string, reviewId: string): Promise<boolean> {
  const events = await eventStore.readStream(agreementStream(agreementId));
  return events.some((e) => e.type === 'AgreementReviewed' && (e.data as { reviewId?: string }).reviewId === reviewId);
}

export type OutcomeCompleter = {
  /** Appends the agreement events the review's outcome lacks; answers how many agreements it completed. */
  complete(reviewId: string): Promise<number>;
  start(): Promise<void>;
  stop(): Promise<void>;
};

export function createOutcomeCompleter(deps: { eventStore: EventStore; logger: Logger }): OutcomeCompleter {
  const { eventStore } = deps;
  const log = deps.logger.child({ component: 'review-outcomes' });
  let subscription: Subscription | null = null;

  async function complete(reviewId: string): Promise<number> {
    const outcome = await heldOutcome(eventStore, reviewId);
    if (!outcome) return 0;
    let completed = 0;
    for (const agreementId of outcome.agreementIds) {
      if (await agreementRecords(eventStore, agreementId, reviewId)) continue;
      try {
        await recordReviewOnAgreement(eventStore, reviewId, outcome.event, agreementId);
        completed++;
      } catch (err) {
        // A refusal by the decider (the agreement is gone) cannot change by retrying; a store fault can.
        if (!(err instanceof AppError)) throw err;
        log.error({ err, reviewId, agreementId }, 'the review outcome cannot be recorded on this agreement');
      }
    }
    if (completed > 0) log.warn({ reviewId, agreements: completed }, 'review outcome completed on its agreements from the log');
    return completed;
  }

  return {
    complete,
    async start(): Promise<void> {
      // The head first: a review held during the scan is seen by the subscription too (completing twice is a no-op).
      const head = await eventStore.headPosition();
      const ids = (await eventStore.listStreams()).map(parseStreamName).flatMap((s) => (s?.kind === 'review' ? [s.id] : []));
      let completed = 0;
      let next = 0;
      const worker = async () => {
        while (next < ids.length) completed += await complete(ids[next++]!);
      };
      await Promise.all(Array.from({ length: Math.min(SCAN_CONCURRENCY, ids.length) }, worker));
      log.info({ reviews: ids.length, completed }, 'review outcomes checked against the log');
      subscription = eventStore.subscribe({
        after: head,
        onEvents: async (events) => {
          for (const e of events) {
            const s = parseStreamName(e.stream);
            if (s?.kind === 'review' && e.type === 'ReviewHeld') await complete(s.id);
          }
        },
        // The batch is delivered again after the error: a failed completion is retried.
        onError: (err) => log.error({ err }, 'completing a review outcome failed; it will be retried'),
      });
    },
    async stop(): Promise<void> {
      await subscription?.close();
      subscription = null;
    },
  };
}
