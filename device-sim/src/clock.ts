// The device state machine gets time and timers from here, so unit tests can drive it with a fake clock.

export type TimerHandle = unknown;

export interface Clock {
  /** milliseconds, comparable across every device of one process */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Node runs a timer of more than 2^31 − 1 ms (about 24.8 days) after 1 ms instead, so a longer one is re-armed in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface LongTimer {
  timer: ReturnType<typeof setTimeout> | undefined;
}

export const realClock: Clock = {
  // timeOrigin + performance.now() is monotonic within the process and sub-millisecond, yet still wall-clock-like
  now: () => performance.timeOrigin + performance.now(),
  setTimeout(fn, ms) {
    const handle: LongTimer = { timer: undefined };
    const arm = (remaining: number): void => {
      handle.timer = remaining > MAX_TIMER_MS ? setTimeout(() => arm(remaining - MAX_TIMER_MS), MAX_TIMER_MS) : setTimeout(fn, Math.max(0, remaining));
    };
    arm(ms);
    return handle;
  },
  clearTimeout: (handle) => clearTimeout((handle as LongTimer).timer),
};
