// A clock the test moves: time stands still until `advanceTo`/`advanceBy`, which fire the timers
// due on the way in time order (a timer already due when armed fires at once). Test-only (not exported from the package's index).
import type { Clock, TimerHandle } from '../clock.js';

type Timer = { id: number; at: number; fn: () => void };

export type TestClock = Clock & {
  advanceBy(ms: number): Promise<void>;
  advanceTo(at: Date | string | number): Promise<void>;
  /** Timers armed and not yet fired. */
  pendingTimers(): number;
};

/**
 * `fireEarlyMs` makes a timer armed for more than that fire that much before its time, as Node's
 * timers (on the monotonic clock) do against Date.now(): the code under test must cope.
 */
export function createTestClock(options: { start?: Date | number; fireEarlyMs?: number } = {}): TestClock {
  let now = options.start === undefined ? Date.now() : new Date(options.start).getTime();
  let seq = 0;
  const timers = new Map<number, Timer>();
  const early = options.fireEarlyMs ?? 0;

  // Lets promise chains started by a fired timer run (and arm their own timers) before the
  // next one fires.
  const drainMicrotasks = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
    await new Promise<void>((r) => setImmediate(r));
  };

  async function advanceTo(target: number) {
    for (;;) {
      const next = [...timers.values()].filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) break;
      timers.delete(next.id);
      now = Math.max(now, next.at);
      next.fn();
      await drainMicrotasks();
    }
    now = Math.max(now, target);
    await drainMicrotasks();
  }

  return {
    now: () => new Date(now),
    setTimer(fn, ms) {
      const delay = Math.max(0, ms);
      const id = ++seq;
      const at = now + (delay > early ? delay - early : delay);
      timers.set(id, { id, at, fn });
      // Due already: no time has to pass, so it fires on its own, as a zero timer would.
      if (at <= now) {
        setImmediate(() => {
          if (timers.delete(id)) fn();
        });
      }
      return { id } satisfies TimerHandle;
    },
    clearTimer(handle) {
      timers.delete(handle.id as number);
    },
    advanceBy: (ms) => advanceTo(now + ms),
    advanceTo: (at) => advanceTo(new Date(at).getTime()),
    pendingTimers: () => timers.size,
  };
}
