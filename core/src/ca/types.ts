import type { KeyObject } from 'node:crypto';
import type { IdentityKind } from '@enrolld/protocol';

/** What a certificate's enrolldProfile extension carries: the profile name and version, and the device group if any. */
export interface CertificateProfileRef {
  name: string;
  version: number;
  /** The device group (the ACL's `{group}`); absent in certificates of identities without one, and in older ones. */
  group?: string | undefined;
}

/** A CSR that parsed, whose signature verified and whose key passed the key policy. */
export interface ParsedCsr {
  /** The CSR as DER. */
  der: Buffer;
  /** SHA-256 of `der`: the retry key for a spent token. */
  sha256: Buffer;
  publicKey: KeyObject;
  /** SubjectPublicKeyInfo as it goes into the certificate. */
  spkiDer: Buffer;
  /** SHA-256 of `spkiDer`: finds every cert for one key. */
  publicKeySha256: Buffer;
  /** For messages and logs, e.g. "EC P-256", "RSA 2048". */
  keyDescription: string;
  /** Names the CSR asks for. They are never copied into a certificate; they are only compared with the record. */
  requested: {
    commonNames: string[];
    otherSubjectAttributes: number;
    uris: string[];
    dnsNames: string[];
    ipAddresses: string[];
    emails: string[];
    otherNames: number;
  };
}

export interface DeviceCertificateSpec {
  /** The identity's kind, from the server's record: it picks the SAN URI (urn:enrolld:<kind>:<id>). */
  kind: IdentityKind;
  /** The identity's id (a device id or a service name). */
  deviceId: string;
  /** The profile the certificate is issued under, written into the enrolldProfile extension. */
  profile: CertificateProfileRef;
  /** Positive, minimal DER content octets, ≤ 20 octets (RFC 5280 §4.1.2.2). */
  serial: Buffer;
  spkiDer: Buffer;
  notBefore: Date;
  notAfter: Date;
}

export interface CrlEntry {
  serial: string;
  revokedAt: Date;
  /** RFC 5280 §5.3.1 CRLReason code. */
  reasonCode: number;
}

export interface CrlSpec {
  entries: CrlEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** RFC 5280 §5.2.3, monotonic. */
  crlNumber: bigint;
}

/**
 * The issuing CA. The private key lives only inside the signer (signer.ts);
 * the RA and every adapter get these functions, never the key.
 */
export interface IssuingCa {
  /** DER of the issuing (intermediate) certificate. */
  readonly certificateDer: Buffer;
  /** The chain a device needs: issuing CA then root, PEM. */
  readonly chainPem: string;
  readonly rootPem: string;
  /** Builds the To-Be-Signed bytes of a device certificate (the device profile, docs/architecture.md). */
  buildDeviceTbs(spec: DeviceCertificateSpec): Buffer;
  /** Signs a TBS built by buildDeviceTbs and returns the certificate DER. */
  signCertificate(tbsDer: Buffer): Buffer;
  /** Checks a signed device certificate against the profile and the spec; throws EnrollError('internal') on any deviation. */
  checkIssued(certificateDer: Buffer, spec: DeviceCertificateSpec): void;
  /** A DER CRL signed by the issuing CA. */
  signCrl(spec: CrlSpec): Buffer;
}
