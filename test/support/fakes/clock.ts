// A core Clock (core/src/clock.ts) that moves only when a test says so, with the monotonic milliseconds that measure
// elapsed time beside it: advance() moves both, step() only the wall clock (NTP, a VM restored from a snapshot).
import type { Clock } from '@enrolld/core/clock.js';

export interface ManualClock extends Clock {
  advance(ms: number): void;
  step(ms: number): void;
  elapsedMs(): number;
}

export function createManualClock(start = new Date()): ManualClock {
  let wall = start.getTime();
  let elapsed = 0;
  return {
    now: () => new Date(wall),
    elapsedMs: () => elapsed,
    advance(ms) {
      wall += ms;
      elapsed += ms;
    },
    step(ms) {
      wall += ms;
    },
  };
}
