// Injected so tests can pin time; production uses the wall clock.
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Milliseconds on a clock no wall-clock step moves (NTP, a VM restored from a snapshot): for "how long since". */
export const monotonicMs = (): number => performance.now();
