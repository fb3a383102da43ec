import { EnrollError } from '../errors.js';
import { decodeTime, readChildren, readTlv } from './der.js';
import type { IssuingCa } from './types.js';

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** Largest backdate accepted (clock skew allowance); the caller's configuration should stay well below it. */
export const MAX_BACKDATE_SECONDS = 3600;

/**
 * Validity of a device certificate with an exact lifetime. RFC 5280 §4.1.2.5: both ends are inclusive, so
 * notAfter − notBefore + 1 s == lifetime (the Let's Encrypt 2021 "90 days + 1 second" incident). notBefore is
 * `now` truncated to the second minus `backdateSeconds`. With `issuerNotAfter`, a notAfter past it is refused
 * (Boulder TestIssueCertificate_ValidPastIssuer): the issuing CA must be rotated first.
 */
export function deviceValidity(
  now: Date,
  lifetimeSeconds: number,
  backdateSeconds: number,
  issuer?: Date | Pick<IssuingCa, 'certificateDer'>,
): Validity {
  const issuerNotAfter = issuer === undefined || issuer instanceof Date ? issuer : certificateNotAfter(issuer.certificateDer);
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) throw new EnrollError('internal', 'deviceValidity: invalid current time');
  if (!Number.isSafeInteger(lifetimeSeconds) || lifetimeSeconds < 1) {
    throw new EnrollError('internal', 'deviceValidity: lifetime must be a positive whole number of seconds');
  }
  if (!Number.isSafeInteger(backdateSeconds) || backdateSeconds < 0 || backdateSeconds > MAX_BACKDATE_SECONDS) {
    throw new EnrollError('internal', `deviceValidity: backdate must be 0–${MAX_BACKDATE_SECONDS} whole seconds`);
  }
  const notBeforeMs = Math.floor(nowMs / 1000) * 1000 - backdateSeconds * 1000;
  const notBefore = new Date(notBeforeMs);
  const notAfter = new Date(notBeforeMs + (lifetimeSeconds - 1) * 1000);
  if (issuerNotAfter !== undefined && notAfter.getTime() > issuerNotAfter.getTime()) {
    throw new EnrollError(
      'unavailable',
      'the issuing CA expires before a certificate of the configured lifetime would; the issuing CA must be renewed',
      {
        logDetail: `device notAfter ${notAfter.toISOString()} is past the issuing CA notAfter ${issuerNotAfter.toISOString()}`,
      },
    );
  }
  return { notBefore, notAfter };
}

const notAfterCache = new WeakMap<Buffer, Date>();

/** notAfter of a DER certificate (our own CA certificate, so trusted input), cached per buffer. */
export function certificateNotAfter(der: Buffer): Date {
  let cached = notAfterCache.get(der);
  if (!cached) {
    const cert = readTlv(der, 0, der.length);
    const [tbs] = readChildren(der, cert, 3);
    const fields = tbs ? readChildren(der, tbs, 12) : [];
    const validity = fields[fields[0]?.tag === 0xa0 ? 4 : 3];
    const na = validity ? readChildren(der, validity, 2)[1] : undefined;
    if (!na) throw new EnrollError('internal', 'cannot read the issuing CA notAfter');
    cached = decodeTime(der, na);
    notAfterCache.set(der, cached);
  }
  return cached;
}
