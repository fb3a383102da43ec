// CRL publication decoupled from each revocation (docs/architecture.md §7). A revocation is enforced from the registry
// and the NOTIFY feed at once; the CRL only has to follow for relying parties, so rebuilds are coalesced: one in flight,
// starts at least `minIntervalMs` apart, and every request made while one runs is served by exactly one more after it.
// Over T ms that is at most floor(T / minIntervalMs) + 1 rebuilds, however many revocations arrive. Across API replicas
// the store decides under a lock per environment, on the database's clock (`rebuildCrlWhenDue`): a rebuild another
// process started less than the interval ago answers `not-due` and this scheduler asks again when it is due, and a
// CRL another process built that covers everything answers `current` and serves the waiters without a rebuild.
// The spacing is kept on the timers' monotonic clock: a step of the wall clock must not hold the next CRL back.
import { monotonicMs } from '../clock.js';
import type { CrlRebuildOutcome, StoredCrl } from './ports.js';

/** The timer half of time, injected next to the Clock so a test can run the schedule by hand. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds on the monotonic clock the timers run on: for "how long since", which no wall-clock step moves. */
  elapsedMs(): number;
}

export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    // A pending rebuild must not keep a stopping process alive: the next start's ensureCrlCurrent catches up.
    return setTimeout(fn, ms).unref();
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
  elapsedMs: monotonicMs,
};

export interface CrlRebuildSchedulerDeps {
  /**
   * Builds, signs and stores a CRL covering everything committed when it starts, unless the store finds one current
   * already or another process's rebuild too recent (then it is asked again after `retryInMs`).
   */
  rebuild(): Promise<CrlRebuildOutcome>;
  timers: Timers;
  minIntervalMs: number;
  /** Each CRL this process built (not one another process built and the store found current). */
  onRebuilt(crl: StoredCrl): void;
  /** Each failed rebuild, once. Nothing is retried on its own: the next request (a revocation, the periodic check, a CRL fetch) rebuilds again. */
  onError(error: unknown): void;
}

interface Waiter {
  resolve(crl: StoredCrl): void;
  reject(error: unknown): void;
}

export function createCrlRebuildScheduler(deps: CrlRebuildSchedulerDeps) {
  const { timers } = deps;
  let lastStartMs = Number.NEGATIVE_INFINITY;
  /** Not before this (another process rebuilt less than the interval ago, by the store's clock). */
  let notBeforeMs = Number.NEGATIVE_INFINITY;
  let running = false;
  let timer: unknown;
  /** A rebuild is owed: something was requested after the last rebuild started. */
  let owed = false;
  /** Callers waiting for the first rebuild that starts after their request. */
  let waiters: Waiter[] = [];

  function arm(): void {
    if (!owed || running || timer !== undefined) return;
    const delay = Math.max(lastStartMs + deps.minIntervalMs, notBeforeMs) - timers.elapsedMs();
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
    lastStartMs = timers.elapsedMs();
    const served = waiters;
    waiters = [];
    try {
      const outcome = await deps.rebuild();
      if (outcome.outcome === 'not-due') {
        // Nothing was built: the waiters and the request stay for the run the store says is due.
        waiters = [...served, ...waiters];
        owed = true;
        lastStartMs = Number.NEGATIVE_INFINITY;
        notBeforeMs = timers.elapsedMs() + outcome.retryInMs;
        return;
      }
      if (outcome.outcome === 'built') deps.onRebuilt(outcome.crl);
      for (const w of served) w.resolve(outcome.crl);
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
