import { deviceValidity, newSerial, serialHex } from './ca/index.js';
import { toPem } from './ca/der.js';
import type { DeviceCertificateSpec, IssuingCa, ParsedCsr } from './ca/types.js';
import type { Clock } from './clock.js';
import { EnrollError } from './errors.js';
import type { EnrollResponse } from '@enrolld/protocol';
import type { CertificateIntent, IssuedCertificate } from './ports.js';

// The issuance cycle shared by enrollment and renewal (Boulder order, invariant I1): the intent (serial + TBS) is
// committed by the caller's store before anything is signed; then sign, self-check, store, answer.

export interface IssuancePolicy {
  certificateLifetimeSeconds: number;
  backdateSeconds: number;
}

export interface IntentSubject {
  deviceId: string;
  profile: string;
  predecessorSerial?: string | undefined;
}

export function buildIntent(ca: IssuingCa, clock: Clock, policy: IssuancePolicy, subject: IntentSubject, csr: ParsedCsr): CertificateIntent {
  const serial = newSerial();
  const { notBefore, notAfter } = deviceValidity(clock.now(), policy.certificateLifetimeSeconds, policy.backdateSeconds, ca);
  return {
    serial: serialHex(serial),
    deviceId: subject.deviceId,
    profile: subject.profile,
    notBefore,
    notAfter,
    publicKeySha256: csr.publicKeySha256,
    csrSha256: csr.sha256,
    tbsDer: ca.buildDeviceTbs({ deviceId: subject.deviceId, serial, spkiDer: csr.spkiDer, notBefore, notAfter }),
    predecessorSerial: subject.predecessorSerial,
  };
}

function specOf(intent: CertificateIntent, csr: ParsedCsr): DeviceCertificateSpec {
  return { deviceId: intent.deviceId, serial: Buffer.from(intent.serial, 'hex'), spkiDer: csr.spkiDer, notBefore: intent.notBefore, notAfter: intent.notAfter };
}

/**
 * Signs an intent, checks the result against the profile and stores it. `resumed` intents come back from the
 * database (the signer or the final write failed earlier): the CA signs only TBS bytes it built itself, so the
 * TBS is rebuilt from the recorded fields and must equal the recorded bytes before it is signed.
 */
export async function signAndRecord(
  ca: IssuingCa,
  complete: (serial: string, der: Buffer, requestId?: string) => Promise<IssuedCertificate>,
  intent: CertificateIntent,
  csr: ParsedCsr,
  options: { requestId?: string | undefined; resumed?: boolean } = {},
): Promise<IssuedCertificate> {
  const spec = specOf(intent, csr);
  let tbs = intent.tbsDer;
  if (options.resumed) {
    tbs = ca.buildDeviceTbs(spec);
    if (!tbs.equals(intent.tbsDer)) {
      throw new EnrollError('internal', 'the recorded certificate intent does not match this request', { logDetail: `TBS mismatch for serial ${intent.serial}` });
    }
  }
  const der = ca.signCertificate(tbs);
  ca.checkIssued(der, spec); // a deviation aborts before anything is returned; the intent row stays revocable
  return complete(intent.serial, der, options.requestId);
}

/** The answer to an enrollment or a renewal, on every transport (docs/architecture.md §10). */
export function issuedResponse(cert: IssuedCertificate, chainPem: string): EnrollResponse {
  return { deviceId: cert.deviceId, serial: cert.serial, certificate: toPem('CERTIFICATE', cert.der), chain: chainPem, notAfter: cert.notAfter.toISOString() };
}
