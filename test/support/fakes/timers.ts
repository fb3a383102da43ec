// Timers (core/src/revocation/crl-publisher.ts) on a ManualClock: a timer fires only when a test advances the clock
// past it, in due order, with pending promise continuations run in between. Like Node's, they run on the monotonic
// clock, so a step of the wall clock (ManualClock.step) fires none.
import type { Timers } from '@enrolld/core/revocation/crl-publisher.js';
import type { ManualClock } from './clock.js';

/** Lets every settled promise run its continuations (the in-memory stores never touch real I/O). */
export const settle = async (rounds = 5): Promise<void> => {
  for (let i = 0; i < rounds; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

export interface ManualTimers extends Timers {
  /** Moves the clock by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): Promise<void>;
  readonly pending: number;
}

export function createManualTimers(clock: ManualClock): ManualTimers {
  let nextId = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    setTimeout(fn, ms) {
      const id = ++nextId;
      timers.set(id, { at: clock.elapsedMs() + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    elapsedMs: () => clock.elapsedMs(),
    get pending() {
      return timers.size;
    },
    async advance(ms) {
      const target = clock.elapsedMs() + ms;
      for (;;) {
        await settle();
        const due = [...timers.entries()].filter(([, t]) => t.at <= target).sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
        if (!due) break;
        const [id, timer] = due;
        timers.delete(id);
        clock.advance(timer.at - clock.elapsedMs());
        timer.fn();
      }
      clock.advance(target - clock.elapsedMs());
      await settle();
    },
  };
}
