// Public API of the CA and the issuance hot path. The issuing CA's private key stays inside signer.ts.
export type { CrlEntry, CrlSpec, DeviceCertificateSpec, IssuingCa, ParsedCsr } from './types.js';
export { createCaMaterial, createIssuingCaMaterial, createRootCaMaterial, issueServerCertificate } from './ca-material.js';
export type { CaKeyPair, CaMaterial, CreateCaMaterialOptions, IssuingCaOptions, IssueServerCertificateOptions, RootCaOptions, ServerCertificateMaterial } from './ca-material.js';
export { createIssuingCa, signServerCertificateWithKey } from './issuing-ca.js';
export type { CreateIssuingCaOptions, DeviceIssuingCa } from './issuing-ca.js';
export type { ServerCertificateRequest } from './server-certificate.js';
export { checkDeviceCertificate } from './certificate-lint.js';
export type { IssuerFacts } from './issuer.js';
export { certificateIdentityOf, KeyUsageBit, readCertificate, readCertificateIdentity } from './certificate-reader.js';
export type { CertificateExtension, CertificateIdentity, CertificateStructure } from './certificate-reader.js';
export { decodeCsr, decodeCsrInput, MAX_CSR_BYTES, MAX_CSR_DEPTH, parseCsr, parseCsrAsync, verifyCsrSignature } from './csr.js';
export type { CsrSignatureAlgorithm, DecodedCsr } from './csr.js';
export { assertCsrNamesIdentity } from './identity.js';
export { checkSpki, importPublicKey, importPublicKeyFast, RSA_MAX_BITS, RSA_MIN_BITS } from './key-policy.js';
export type { EcCurve, KeyInfo } from './key-policy.js';
export { DEFAULT_SERIAL_PREFIX, generateSerial, isValidSerial, newSerial, serialFromHex, serialHex, SERIAL_LENGTH } from './serial.js';
export { certificateNotAfter, deviceValidity, MAX_BACKDATE_SECONDS } from './validity.js';
export type { Validity } from './validity.js';
