// A core Clock (core/src/clock.ts) that moves only when a test says so.
import type { Clock } from '@enrolld/core/clock.js';

export interface ManualClock extends Clock {
  advance(ms: number): void;
}

export function createManualClock(start = new Date()): ManualClock {
  let t = start.getTime();
  return {
    now: () => new Date(t),
    advance(ms) {
      t += ms;
    },
  };
}
