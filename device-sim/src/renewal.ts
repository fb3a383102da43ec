// When a device renews: once the server's renewal window opens (the `renewAfter` of the enroll/renew answer,
// protocol/src/schemas.ts), spread over the first half of that window so a fleet issued at once does not renew at once
// (as widely as the own 2/3 ± 1/12 rule spreads it with the default window of a third) and the other half is left for
// retries; without that hint (EST answers carry none) at about 2/3 of the lifetime
// ± 1/12 (docs/architecture.md). Never later than a safety lead before expiry.
import type { Rng } from './rng.js';

export interface RenewalPolicy {
  /** point of the lifetime to aim at */
  fraction: number;
  /** ± this share of the lifetime, uniform */
  jitterFraction: number;
  /** renew at least this long before notAfter (also at least 5% of the lifetime) */
  minLeadMs: number;
}

/** The share of the server's renewal window, from its opening, over which renewals are spread. */
const WINDOW_SHARE = 1 / 2;

export const DEFAULT_RENEWAL: RenewalPolicy = { fraction: 2 / 3, jitterFraction: 1 / 12, minLeadMs: 2_000 };

/**
 * Absolute time (ms) at which to renew a certificate valid over [notBefore, notAfter]. `renewAfter` (ms), when the server
 * named one inside the validity period: never before it, uniform over the first half of [renewAfter, notAfter].
 */
export function renewalTime(notBefore: number, notAfter: number, now: number, policy: RenewalPolicy, rng: Rng, renewAfter?: number): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  const hinted = renewAfter !== undefined && Number.isFinite(renewAfter) && renewAfter >= notBefore && renewAfter < notAfter;
  const aim = hinted
    ? renewAfter + (notAfter - renewAfter) * rng() * WINDOW_SHARE
    : notBefore + lifetime * (policy.fraction + (rng() * 2 - 1) * policy.jitterFraction);
  const latest = notAfter - Math.max(policy.minLeadMs, lifetime * 0.05);
  return Math.max(now, Math.min(aim, latest));
}
