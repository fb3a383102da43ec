// CRL publication decoupled from each revocation (docs/architecture.md §7). A revocation is enforced from the registry
// and the NOTIFY feed at once; the CRL only has to follow for relying parties, so rebuilds are coalesced: one in flight,
// starts at least `minIntervalMs` apart, and every request made while one runs is served by exactly one more after it.
// Over T ms that is at most floor(T / minIntervalMs) + 1 rebuilds, however many revocations arrive.
import type { Clock } from '../clock.js';
import type { StoredCrl } from './ports.js';

/** The timer half of time, injected next to the Clock so a test can run the schedule by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    // A pending rebuild must not keep a stopping process alive: the next start's ensureCrlCurrent catches up.
    return setTimeout(fn, ms).unref();
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

export interface CrlRebuildSchedulerDeps {
  /** Builds, signs and stores a CRL covering everything committed when it starts. */
  rebuild(): Promise<StoredCrl>;
  clock: Clock;
  timers: Timers;
  minIntervalMs: number;
  onRebuilt(crl: StoredCrl): void;
  /** Each failed rebuild, once. Nothing is retried on its own: the next request (a revocation, the periodic check, a CRL fetch) rebuilds again. */
  onError(error: unknown): void;
}

interface Waiter {
  resolve(crl: StoredCrl): void;
  reject(error: unknown): void;
}

export function createCrlRebuildScheduler(deps: CrlRebuildSchedulerDeps) {
  const { clock, timers } = deps;
  let lastStartMs = Number.NEGATIVE_INFINITY;
  let running = false;
  let timer: unknown;
  /** A rebuild is owed: something was requested after the last rebuild started. */
  let owed = false;
  /** Callers waiting for the first rebuild that starts after their request. */
  let waiters: Waiter[] = [];

  function arm(): void {
    if (!owed || running || timer !== undefined) return;
    const delay = lastStartMs + deps.minIntervalMs - clock.now().getTime();
    if (delay > 0) {
      timer = timers.setTimeout(() => {
        timer = undefined;
        arm();
      }, delay);
      return;
    }
    void run();
  }

  async function run(): Promise<void> {
    owed = false;
    running = true;
    lastStartMs = clock.now().getTime();
    const served = waiters;
    waiters = [];
    try {
      const crl = await deps.rebuild();
      deps.onRebuilt(crl);
      for (const w of served) w.resolve(crl);
    } catch (error) {
      deps.onError(error);
      for (const w of served) w.reject(error);
    } finally {
      running = false;
      arm();
    }
  }

  return {
    /** Asks for a rebuild without waiting for it (the revoke path: the revocation is already enforced). */
    schedule(): void {
      owed = true;
      arm();
    },

    /** Asks for a rebuild and resolves with the first one that starts after this call, so it covers every commit before it. */
    request(): Promise<StoredCrl> {
      return new Promise<StoredCrl>((resolve, reject) => {
        waiters.push({ resolve, reject });
        owed = true;
        arm();
      });
    },
  };
}

export type CrlRebuildScheduler = ReturnType<typeof createCrlRebuildScheduler>;
