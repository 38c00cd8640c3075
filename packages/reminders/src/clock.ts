// The clock the reminders plan and wait by: the time, and timers on that time. In production the
// system clock; in tests one the test moves itself, so "not before its time" and "after its
// backoff" are checked at exact instants rather than with slack around the wall clock.
export type TimerHandle = { readonly id: unknown };

export interface Clock {
  now(): Date;
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

export const systemClock: Clock = {
  now: () => new Date(),
  setTimer(fn, ms) {
    return { id: setTimeout(fn, ms) };
  },
  clearTimer(handle) {
    clearTimeout(handle.id as NodeJS.Timeout);
  },
};
