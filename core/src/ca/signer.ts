import { sign as cryptoSign } from 'node:crypto';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { encodeCrlTbs } from './crl.js';
import { createDeviceProfile } from './device-profile.js';
import type { IssuerFacts } from './issuer.js';
import { encodeServerCertificateTbs } from './server-certificate.js';
import type { ServerCertificateRequest } from './server-certificate.js';
import type { CrlSpec, DeviceCertificateSpec } from './types.js';
import { assembleSigned, internalError } from './x509-encoding.js';

// The only holder of the issuing CA's private key (docs/architecture.md): callers get these functions, never the
// key. It signs only TBS structures it built itself with the device profile, the CRL encoder or the server
// certificate template, so nothing outside those encoders can choose what the issuing CA signs.

export interface IssuingSigner {
  /** The TBSCertificate of a device certificate, remembered as signable. */
  buildDeviceTbs(spec: DeviceCertificateSpec): Buffer;
  /** Signs a TBS that buildDeviceTbs returned (that very buffer) and returns the certificate DER. */
  signCertificate(tbsDer: Buffer): Buffer;
  /** A DER CRL (RFC 5280 §5). */
  signCrl(spec: CrlSpec): Buffer;
  /** A TLS server certificate, DER. */
  signServerCertificate(request: ServerCertificateRequest): Buffer;
}

/** Checks that `key` is the EC P-256 private key of `issuingCertificate` and wraps it; refuses mismatched material. */
export function createIssuingSigner(key: KeyObject, issuingCertificate: X509Certificate, issuer: IssuerFacts): IssuingSigner {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('issuing CA key must be an EC P-256 private key');
  }
  if (!issuingCertificate.checkPrivateKey(key)) throw new Error('issuing CA private key does not match the issuing certificate');
  const deviceProfile = createDeviceProfile(issuer);
  // Device TBS buffers leave this module between building and signing; only those very buffers may come back.
  const built = new WeakSet<Buffer>();
  // ECDSA P-256 with SHA-256, DER signature (RFC 5758 §3.2, RFC 3279 §2.2.3).
  const signed = (tbs: Buffer): Buffer => assembleSigned(tbs, cryptoSign('sha256', tbs, key));

  return {
    buildDeviceTbs(spec) {
      const tbs = deviceProfile.encodeTbs(spec);
      built.add(tbs);
      return tbs;
    },
    signCertificate(tbsDer) {
      if (!built.has(tbsDer)) throw internalError('refusing to sign a TBSCertificate that buildDeviceTbs did not build');
      return signed(tbsDer);
    },
    signCrl: (spec) => signed(encodeCrlTbs(spec, issuer)),
    signServerCertificate: (request) => signed(encodeServerCertificateTbs(request, issuer)),
  };
}
