import { X509Certificate } from 'node:crypto';

/**
 * A certificate presented by a client (a TLS client certificate for renewal or the admin API), if this issuing CA
 * signed it. The API's TLS listener accepts any client certificate (requestCert without rejectUnauthorized), so this is
 * the check; the store then decides whether it is on record and in force.
 */
export function verifyIssuedBy(der: Buffer, issuer: X509Certificate): { ok: true; certificate: X509Certificate } | { ok: false; reason: 'unparseable' | 'foreign' } {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(der);
  } catch {
    return { ok: false, reason: 'unparseable' };
  }
  return certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey) ? { ok: true, certificate } : { ok: false, reason: 'foreign' };
}
