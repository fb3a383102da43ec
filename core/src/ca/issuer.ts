import { certificateIdentityOf, readCertificate } from './certificate-reader.js';
import { keyIdentifierOf } from './x509-encoding.js';

// What every encoder and the profile check need to know about the issuing CA, read once from its certificate.

export interface IssuerFacts {
  /** The issuing CA's subject Name, DER: the issuer of everything it signs. */
  name: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Its key identifier: the AKI of everything it signs (RFC 5280 §4.2.1.1). */
  keyIdentifier: Buffer;
}

export function readIssuerFacts(certificateDer: Buffer): IssuerFacts {
  const structure = readCertificate(certificateDer);
  const certificate = certificateIdentityOf(structure);
  const { subjectPublicKey } = structure;
  // RFC 5280 §4.2.1.2 method 1 when the CA certificate carries no SKI.
  const keyIdentifier =
    certificate.subjectKeyIdentifier ?? keyIdentifierOf(certificateDer.subarray(subjectPublicKey.valueStart + 1, subjectPublicKey.end));
  return {
    name: Buffer.from(certificate.subjectDer),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    keyIdentifier: Buffer.from(keyIdentifier),
  };
}
