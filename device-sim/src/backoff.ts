// Exponential backoff with full jitter (delay uniform in [floor, min(cap, base·2^attempt))), so a fleet that lost
// its broker at once does not come back at once (docs/architecture.md: a core does a few hundred mTLS handshakes a second).
import type { Rng } from './rng.js';

export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /** never retry sooner than this, so a refused device cannot spin */
  floorMs: number;
}

export const DEFAULT_RECONNECT_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 15_000, floorMs: 50 };

export function backoffCeiling(attempt: number, policy: BackoffPolicy): number {
  // 2^attempt overflows to Infinity long before it matters; min() caps it.
  return Math.max(policy.floorMs, Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt)));
}

export function backoffDelay(attempt: number, policy: BackoffPolicy, rng: Rng): number {
  const ceiling = backoffCeiling(attempt, policy);
  return policy.floorMs + rng() * (ceiling - policy.floorMs);
}
