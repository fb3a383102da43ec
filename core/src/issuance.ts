import { deviceValidity, newSerial, serialHex } from './ca/index.js';
import { toPem } from './ca/der.js';
import type { CertificateProfileRef, DeviceCertificateSpec, IssuingCa, ParsedCsr } from './ca/types.js';
import type { Clock } from './clock.js';
import { EnrollError } from './errors.js';
import type { EnrollResponse, IdentityKind, KeyType } from '@enrolld/protocol';
import type { CertificateIntent, IssuedCertificate } from './ports.js';
import type { ProfileTerms } from './profiles/ports.js';

// The issuance cycle shared by enrollment and renewal (Boulder order, invariant I1): the intent (serial + TBS) is
// committed by the caller's store before anything is signed; then sign, self-check, store, answer.

export interface IssuancePolicy {
  certificateLifetimeSeconds: number;
  backdateSeconds: number;
  /** The renewal window of certificates whose profile sets none (RENEWAL_WINDOW): the last fraction of the lifetime. */
  renewalWindowFraction: number;
}

export interface IntentSubject {
  /** The kind of the identity's record; a profile of another kind is refused. */
  kind: IdentityKind;
  deviceId: string;
  /** Whose issuing CA `ca` is: the certificate is recorded in that environment. */
  environment: string;
  /** The profile's current version, or undefined when the name no longer exists. */
  profile: ProfileTerms | undefined;
  profileName: string;
  /** The device group, from the token or (renewal) the predecessor's record; never from the CSR. */
  group: string | undefined;
  predecessorSerial?: string | undefined;
}

/** The profile key type of a key the key policy accepted (ParsedCsr.keyDescription). */
function keyTypeOf(keyDescription: string): KeyType | undefined {
  if (keyDescription === 'EC P-256') return 'ec-p256';
  if (keyDescription === 'EC P-384') return 'ec-p384';
  return keyDescription.startsWith('RSA ') ? 'rsa' : undefined;
}

export function buildIntent(ca: IssuingCa, clock: Clock, policy: IssuancePolicy, subject: IntentSubject, csr: ParsedCsr): CertificateIntent {
  const profile = subject.profile;
  if (!profile) throw new EnrollError('conflict', `the profile "${subject.profileName}" of ${subject.deviceId} no longer exists`);
  if (profile.kind !== subject.kind) {
    throw new EnrollError('internal', `profile ${profile.name} is for ${profile.kind}s but ${subject.deviceId} is a ${subject.kind}`);
  }
  const keyType = keyTypeOf(csr.keyDescription);
  if (profile.keyTypes && (keyType === undefined || !profile.keyTypes.includes(keyType))) {
    throw new EnrollError('bad-key', `profile ${profile.name} allows ${profile.keyTypes.join(', ')} keys, not ${csr.keyDescription}`);
  }
  const serial = newSerial();
  const lifetime = profile.lifetimeSeconds ?? policy.certificateLifetimeSeconds;
  const { notBefore, notAfter } = deviceValidity(clock.now(), lifetime, policy.backdateSeconds, ca);
  const ref = profileRef(profile.name, profile.version, subject.group);
  return {
    serial: serialHex(serial),
    kind: subject.kind,
    deviceId: subject.deviceId,
    environment: subject.environment,
    profile: profile.name,
    profileVersion: profile.version,
    group: subject.group,
    notBefore,
    notAfter,
    publicKeySha256: csr.publicKeySha256,
    csrSha256: csr.sha256,
    tbsDer: ca.buildDeviceTbs({ kind: subject.kind, deviceId: subject.deviceId, profile: ref, serial, spkiDer: csr.spkiDer, notBefore, notAfter }),
    predecessorSerial: subject.predecessorSerial,
  };
}

/** The enrolldProfile content: the group only when there is one, so a certificate without one reads as before groups. */
function profileRef(name: string, version: number, group: string | undefined): CertificateProfileRef {
  return group === undefined ? { name, version } : { name, version, group };
}

function specOf(intent: CertificateIntent, csr: ParsedCsr): DeviceCertificateSpec {
  return {
    kind: intent.kind,
    deviceId: intent.deviceId,
    profile: profileRef(intent.profile, intent.profileVersion, intent.group),
    serial: Buffer.from(intent.serial, 'hex'), spkiDer: csr.spkiDer, notBefore: intent.notBefore, notAfter: intent.notAfter };
}

/**
 * Signs an intent, checks the result against the profile and stores it. `resumed` intents come back from the
 * database (the signer or the final write failed earlier): the CA signs only TBS bytes it built itself, so the
 * TBS is rebuilt from the recorded fields and must equal the recorded bytes before it is signed.
 */
export async function signAndRecord(
  ca: IssuingCa,
  complete: (serial: string, der: Buffer, requestId?: string, actor?: string) => Promise<IssuedCertificate>,
  intent: CertificateIntent,
  csr: ParsedCsr,
  options: { requestId?: string | undefined; actor?: string | undefined; resumed?: boolean } = {},
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
  return complete(intent.serial, der, options.requestId, options.actor);
}

/**
 * When a certificate's renewal window opens: the last `fraction` of its lifetime, the fraction of its profile version
 * or else the default. The rotation sweep hints by the same window (db/src/renewal-store.ts renewalCandidates).
 */
export function renewalWindowStart(cert: Pick<IssuedCertificate, 'notBefore' | 'notAfter' | 'renewalWindowFraction'>, defaultFraction: number): Date {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(cert.notAfter.getTime() - Math.round(lifetime * (cert.renewalWindowFraction ?? defaultFraction)));
}

/** The answer to an enrollment or a renewal, on every transport (docs/architecture.md §10). */
export function issuedResponse(cert: IssuedCertificate, chainPem: string, policy: Pick<IssuancePolicy, 'renewalWindowFraction'>): EnrollResponse {
  return {
    deviceId: cert.deviceId,
    serial: cert.serial,
    certificate: toPem('CERTIFICATE', cert.der),
    chain: chainPem,
    notAfter: cert.notAfter.toISOString(),
    renewAfter: renewalWindowStart(cert, policy.renewalWindowFraction).toISOString(),
  };
}
