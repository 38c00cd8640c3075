// A decider as one value: what the command runner needs to run any stream's commands.
import { decideAgreement, evolveAgreement, initialAgreementState, type AgreementCommand, type AgreementState } from './agreement-decider';
import type { AgreementEvent, ReviewEvent, Timed } from './events';
import { decideReview, evolveReview, initialReviewState, type ReviewCommand, type ReviewState } from './review-decider';

export type Decider<S, C, E extends { type: string; data: unknown }> = {
  initial: () => S;
  evolve: (state: S, event: Timed<E>) => S;
  decide: (command: C, state: S) => E[];
};

export const agreementDecider: Decider<AgreementState, AgreementCommand, AgreementEvent> = {
  initial: initialAgreementState,
  evolve: evolveAgreement,
  decide: decideAgreement,
};

/** The agreement decider deciding at `now` (a denunciation whose notice ran out has terminated the agreement). */
export const agreementDeciderAt = (now: string): Decider<AgreementState, AgreementCommand, AgreementEvent> => ({
  ...agreementDecider,
  decide: (command, state) => decideAgreement(command, state, now),
});

export const reviewDecider: Decider<ReviewState, ReviewCommand, ReviewEvent> = {
  initial: initialReviewState,
  evolve: evolveReview,
  decide: decideReview,
};
