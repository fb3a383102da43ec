// The simulator's real clock (device-sim/src/clock.ts) under jest's fake timers, which run a timer of more than
// 2^31 − 1 ms after 1 ms as Node does: a renewal due in 25 days (a 30-day certificate renewed in the second half of its
// window) must fire then, not at once.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { MAX_TIMER_MS, realClock } from '../../device-sim/src/clock.js';

const DAY = 86_400_000;

describe('simulator clock', () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('fires a timer longer than 2^31 − 1 ms when it is due, not after 1 ms', () => {
    const fired = jest.fn();
    realClock.setTimeout(fired, 25 * DAY);
    jest.advanceTimersByTime(1000);
    expect(fired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(25 * DAY - MAX_TIMER_MS - 1000 - 1);
    expect(fired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('clears a long timer in any of its steps', () => {
    const fired = jest.fn();
    const handle = realClock.setTimeout(fired, 60 * DAY);
    jest.advanceTimersByTime(MAX_TIMER_MS + 1);
    realClock.clearTimeout(handle);
    jest.advanceTimersByTime(60 * DAY);
    expect(fired).not.toHaveBeenCalled();
  });
});
