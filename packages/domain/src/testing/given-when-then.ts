// Given/when/then for deciders, for unit specs only (not exported from index.ts).
// given(history) folds past events into state; when(command) decides; then* asserts on what a
// caller would see: the events appended, the refusal, or the state after the new events.
import { expect } from 'vitest';
import type { AppError } from '../errors.js';
import type { CommandTime } from '../agreement-decider.js';
import type { Timed } from '../events.js';

export type Decider<Command, Event, State> = {
  decide: (command: Command, state: State, time: CommandTime) => Event[];
  evolve: (state: State, event: Timed<Event>) => State;
  initialState: () => State;
};

type ErrorClass = abstract new (...args: never[]) => AppError;

/** When the new events happened, unless the test says otherwise. */
export const DEFAULT_OCCURRED_AT = '2026-03-02T10:00:00.000Z';
/** The server's clock when the command runs, unless the test says otherwise: never before occurredAt. */
export const DEFAULT_NOW = '2026-03-02T12:00:00.000Z';

export function createGiven<Command, Event, State>(decider: Decider<Command, Event, State>) {
  return function given(history: readonly Timed<Event>[]) {
    const state = history.reduce((s, e) => decider.evolve(s, e), decider.initialState());
    return {
      state,
      when(command: Command, occurredAt: string = DEFAULT_OCCURRED_AT, now: string = occurredAt > DEFAULT_NOW ? occurredAt : DEFAULT_NOW) {
        const decide = () => decider.decide(command, state, { now, occurredAt });
        return {
          /** The command appends exactly these events. */
          then(expected: Event[]): void {
            expect(decide()).toEqual(expected);
          },
          /** The command is accepted but appends nothing (an idempotent repeat, a no-op). */
          thenNothing(): void {
            expect(decide()).toEqual([]);
          },
          /** The command is refused with this kind and code; with `paths`, exactly these fields are named. */
          thenThrows(errorClass: ErrorClass, code: string, paths?: string[]): AppError {
            let caught: unknown;
            try {
              decide();
            } catch (err) {
              caught = err;
            }
            expect(caught).toBeInstanceOf(errorClass);
            const error = caught as AppError;
            expect(error.code).toBe(code);
            if (paths) expect(error.errors.map((e) => e.path)).toEqual(paths);
            return error;
          },
          /** The state once the decided events are folded in, stamped with `occurredAt`. */
          thenState(): State {
            return decide().reduce((s, e) => decider.evolve(s, { ...e, occurredAt }), state);
          },
        };
      },
    };
  };
}
