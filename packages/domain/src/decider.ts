// A decider as one value: what the command runner needs to run any stream's commands.
import { decideAgreement, evolveAgreement, initialAgreementState, type AgreementCommand, type AgreementState, type CommandTime } from './agreement-decider.js';
import type { AgreementEvent, ReviewEvent, Timed } from './events.js';
import { decideReview, evolveReview, initialReviewState, type ReviewCommand, type ReviewState } from './review-decider.js';

export type Decider<S, C, E extends { type: string; data: unknown }> = {
  initial: () => S;
  evolve: (state: S, event: Timed<E>) => S;
  /** `time` comes from the command context: the server's now and the command's occurredAt. */
  decide: (command: C, state: S, time: CommandTime) => E[];
};

export const agreementDecider: Decider<AgreementState, AgreementCommand, AgreementEvent> = {
  initial: initialAgreementState,
  evolve: evolveAgreement,
  decide: decideAgreement,
};

export const reviewDecider: Decider<ReviewState, ReviewCommand, ReviewEvent> = {
  initial: initialReviewState,
  evolve: evolveReview,
  decide: decideReview,
};
