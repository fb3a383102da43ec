import { X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { checkDeviceCertificate } from './certificate-lint.js';
import { fromPem, toPem } from './der.js';
import { readIssuerFacts } from './issuer.js';
import type { ServerCertificateRequest } from './server-certificate.js';
import { createIssuingSigner } from './signer.js';
import type { IssuingCa } from './types.js';
import { deviceValidity } from './validity.js';
import type { Validity } from './validity.js';

// The issuing CA as the rest of the system sees it: checks the CA material once, then composes the signer (the only
// holder of the key, signer.ts), the device profile it signs by (device-profile.ts), the post-sign profile check
// (certificate-lint.ts), CRLs (crl.ts) and server certificates (server-certificate.ts).

export interface CreateIssuingCaOptions {
  issuingCertificatePem: string;
  issuingPrivateKey: KeyObject;
  rootCertificatePem: string;
}

/** IssuingCa plus what composition and tests need; compatible with the fixed interface in types.ts. */
export interface DeviceIssuingCa extends IssuingCa {
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-1 key identifier of the issuing CA (its SKI; the AKI of everything it issues). */
  readonly keyIdentifier: Buffer;
  /** deviceValidity() bounded by this CA's notAfter. */
  deviceValidity(now: Date, lifetimeSeconds: number, backdateSeconds: number): Validity;
  /** Signs a TLS server certificate (serverAuth) for the API and the broker. Returns DER. */
  signServerCertificate(request: ServerCertificateRequest): Buffer;
}

export function createIssuingCa(options: CreateIssuingCaOptions): DeviceIssuingCa {
  return buildIssuingCa(options.issuingCertificatePem, options.issuingPrivateKey, options.rootCertificatePem);
}

/**
 * Signs a TLS server certificate with the issuing CA's key (for re-issuing it when the configured names change),
 * without the caller ever holding more than the key file's contents it already read.
 */
export function signServerCertificateWithKey(
  options: { issuingCertificatePem: string; issuingPrivateKey: KeyObject } & ServerCertificateRequest,
): Buffer {
  return buildIssuingCa(options.issuingCertificatePem, options.issuingPrivateKey, undefined).signServerCertificate(options);
}

function buildIssuingCa(issuingCertificatePem: string, key: KeyObject, rootCertificatePem: string | undefined): DeviceIssuingCa {
  const issuingDer = fromPem(issuingCertificatePem, 'CERTIFICATE');
  const issuingX509 = new X509Certificate(issuingDer);
  // Refuse to start with mismatched material rather than issue certificates nobody can verify.
  if (!issuingX509.ca) throw new Error('issuing certificate is not a CA certificate');
  const issuer = readIssuerFacts(issuingDer);
  const signer = createIssuingSigner(key, issuingX509, issuer);
  let rootDer: Buffer | undefined;
  if (rootCertificatePem !== undefined) {
    rootDer = fromPem(rootCertificatePem, 'CERTIFICATE');
    const rootX509 = new X509Certificate(rootDer);
    if (!rootX509.ca || !issuingX509.checkIssued(rootX509) || !issuingX509.verify(rootX509.publicKey)) {
      throw new Error('issuing certificate is not signed by the root certificate');
    }
  }
  return {
    certificateDer: issuingDer,
    chainPem: toPem('CERTIFICATE', issuingDer) + (rootDer ? toPem('CERTIFICATE', rootDer) : ''),
    rootPem: rootDer ? toPem('CERTIFICATE', rootDer) : '',
    notBefore: issuer.notBefore,
    notAfter: issuer.notAfter,
    keyIdentifier: issuer.keyIdentifier,
    deviceValidity: (now, lifetimeSeconds, backdateSeconds) => deviceValidity(now, lifetimeSeconds, backdateSeconds, issuer.notAfter),
    buildDeviceTbs: signer.buildDeviceTbs,
    signCertificate: signer.signCertificate,
    checkIssued: (certificateDer, spec) => checkDeviceCertificate(certificateDer, spec, issuer),
    signCrl: signer.signCrl,
    signServerCertificate: signer.signServerCertificate,
  };
}
