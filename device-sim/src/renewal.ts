// When a device renews: at about 2/3 of its certificate's lifetime, spread by jitter so a fleet issued at once
// does not renew at once (docs/architecture.md), never later than a safety lead before expiry.
import type { Rng } from './rng.js';

export interface RenewalPolicy {
  /** point of the lifetime to aim at */
  fraction: number;
  /** ± this share of the lifetime, uniform */
  jitterFraction: number;
  /** renew at least this long before notAfter (also at least 5% of the lifetime) */
  minLeadMs: number;
}

export const DEFAULT_RENEWAL: RenewalPolicy = { fraction: 2 / 3, jitterFraction: 1 / 12, minLeadMs: 2_000 };

/** Absolute time (ms) at which to renew a certificate valid over [notBefore, notAfter]. */
export function renewalTime(notBefore: number, notAfter: number, now: number, policy: RenewalPolicy, rng: Rng): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  const aim = notBefore + lifetime * (policy.fraction + (rng() * 2 - 1) * policy.jitterFraction);
  const latest = notAfter - Math.max(policy.minLeadMs, lifetime * 0.05);
  return Math.max(now, Math.min(aim, latest));
}
