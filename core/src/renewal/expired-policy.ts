// What happens when a device comes back with an expired certificate (RENEW_EXPIRED in the README). step-ca refuses by default
// (`allowRenewalAfterExpiry: false`), libest's "ReEnroll expired cert" shows some EST servers allow it: the choice is
// explicit here, and the refusal tells the device which way back exists.
import { EnrollError } from '../errors.js';

export type ExpiredRenewalMode = 'refuse' | 'grace' | 'token';

export interface ExpiredRenewalPolicy {
  mode: ExpiredRenewalMode;
  /** For `grace`: how long after notAfter a renewal is still accepted. */
  graceSeconds: number;
}

/** Throws the refusal for an expired certificate, or returns when the policy lets the renewal through. */
export function assertRenewableAfterExpiry(policy: ExpiredRenewalPolicy, serial: string, notAfter: Date, now: Date, enrollPath: string): void {
  const expiredAt = notAfter.toISOString();
  if (policy.mode === 'grace') {
    const graceEndsAt = new Date(notAfter.getTime() + policy.graceSeconds * 1000);
    if (now.getTime() <= graceEndsAt.getTime()) return;
    throw new EnrollError(
      'expired',
      `certificate ${serial} expired at ${expiredAt}; renewal after expiry is allowed only until ${graceEndsAt.toISOString()}. This device must be re-provisioned by an operator`,
      { extensions: { expiredAt, policy: 'grace', graceEndsAt: graceEndsAt.toISOString(), recovery: 'operator' } },
    );
  }
  if (policy.mode === 'token') {
    throw new EnrollError(
      'expired',
      `certificate ${serial} expired at ${expiredAt}; an expired certificate cannot renew. Enroll again with a new bootstrap token at ${enrollPath}`,
      { extensions: { expiredAt, policy: 'token', recovery: 'bootstrap-token', enroll: enrollPath } },
    );
  }
  throw new EnrollError(
    'expired',
    `certificate ${serial} expired at ${expiredAt}; this server does not renew expired certificates. This device must be re-provisioned by an operator`,
    { extensions: { expiredAt, policy: 'refuse', recovery: 'operator' } },
  );
}
