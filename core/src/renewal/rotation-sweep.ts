// Server-driven renewal (docs/architecture.md §8): find certificates inside their renewal window and hint their devices to renew,
// spread with jitter so that a fleet issued at once does not renew at once. The queue (jobs/) decides when this runs;
// this module decides what is due and makes each hint happen at most once per certificate.
import type { RenewalCandidate, RotationHint, RotationStore } from './ports.js';

export interface RotationSweepPolicy {
  /**
   * The renewal window of a certificate whose profile version sets no `renewalWindowFraction`: the last
   * `windowFraction` of its lifetime (RENEWAL_WINDOW, default 1/3).
   */
  windowFraction: number;
  /** Hints are spread over up to this long … */
  jitterMaxMs: number;
  /** … but never over more than this share of the time the certificate has left. */
  jitterShareOfRemaining: number;
  /** Candidates per sweep; the next sweep takes the rest. */
  batchSize: number;
}

export interface DueHint {
  serial: string;
  deviceId: string;
  /** When to send it, relative to now. */
  delayMs: number;
}

export interface RotationSweepDeps {
  store: RotationStore;
  policy: RotationSweepPolicy;
  now?: () => number;
  random?: () => number;
}

export function createRotationSweep(deps: RotationSweepDeps) {
  const { store, policy } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;

  function jitter(candidate: RenewalCandidate): number {
    const remaining = Math.max(0, candidate.notAfter.getTime() - now());
    const spread = Math.min(policy.jitterMaxMs, remaining * policy.jitterShareOfRemaining);
    return Math.floor(random() * spread);
  }

  return {
    /** Certificates due for a hint, each with its own delay. Read-only: safe to run twice. */
    async findDue(): Promise<DueHint[]> {
      const candidates = await store.renewalCandidates(policy.windowFraction, policy.batchSize);
      return candidates.map((c) => ({ serial: c.serial, deviceId: c.deviceId, delayMs: jitter(c) }));
    },

    /** Sends the hint for one certificate unless it was sent already (the effect is keyed by the serial). */
    hint(serial: string): Promise<RotationHint | undefined> {
      return store.claimHint(serial);
    },
  };
}

export type RotationSweep = ReturnType<typeof createRotationSweep>;
