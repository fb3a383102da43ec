// The device state machine gets time and timers from here, so unit tests can drive it with a fake clock.

export type TimerHandle = unknown;

export interface Clock {
  /** milliseconds, comparable across every device of one process */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = {
  // timeOrigin + performance.now() is monotonic within the process and sub-millisecond, yet still wall-clock-like
  now: () => performance.timeOrigin + performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
