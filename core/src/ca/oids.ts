import { oidContentHex } from './der.js';

// Object identifiers used by the CA, as dotted strings and as hex of their DER content octets (map keys).
export const OID = {
  // Signature algorithms (RFC 5758 §3.2, RFC 4055 §5, RFC 8017 App. C, RFC 3279 §2.2).
  ecdsaWithSha1: '1.2.840.10045.4.1',
  ecdsaWithSha224: '1.2.840.10045.4.3.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  md2WithRsa: '1.2.840.113549.1.1.2',
  md5WithRsa: '1.2.840.113549.1.1.4',
  sha1WithRsa: '1.2.840.113549.1.1.5',
  rsassaPss: '1.2.840.113549.1.1.10',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  sha224WithRsa: '1.2.840.113549.1.1.14',
  dsaWithSha1: '1.2.840.10040.4.3',
  dsaWithSha224: '2.16.840.1.101.3.4.3.1',
  dsaWithSha256: '2.16.840.1.101.3.4.3.2',
  mgf1: '1.2.840.113549.1.1.8',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  // Key algorithms (RFC 5480 §2.1.1, RFC 3279 §2.3, RFC 8410 §3).
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  dsa: '1.2.840.10040.4.1',
  x25519: '1.3.101.110',
  x448: '1.3.101.111',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
  // Named curves (RFC 5480 §2.1.1.1, RFC 5639, SEC 2).
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  p521: '1.3.132.0.35',
  p224: '1.3.132.0.33',
  p192: '1.2.840.10045.3.1.1',
  secp256k1: '1.3.132.0.10',
  brainpoolP256r1: '1.3.36.3.3.2.8.1.1.7',
  brainpoolP384r1: '1.3.36.3.3.2.8.1.1.11',
  brainpoolP512r1: '1.3.36.3.3.2.8.1.1.13',
  // Names and attributes (RFC 5280 App. A, RFC 2985 §5.4).
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14',
  challengePassword: '1.2.840.113549.1.9.7',
  // Extensions (RFC 5280 §4.2.1, §5.2, §5.3).
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  kpServerAuth: '1.3.6.1.5.5.7.3.1',
  kpClientAuth: '1.3.6.1.5.5.7.3.2',
  // enrolld's certificate profile extension (docs/architecture.md §5), in a private enterprise arc. Every arc stays
  // below 2^31: Go's crypto/x509 refuses a certificate whose extension OID has a larger arc, and asn1js misreads
  // one, so a registration-free 2.25.<UUID> OID (128-bit arc) would break common clients. 99999 is a placeholder, not
  // our number: it must be replaced by an IANA-registered PEN before 1.0, readers first (docs/architecture.md §5).
  enrolldProfile: '1.3.6.1.4.1.99999.1.1',
} as const;

export type OidName = keyof typeof OID;

const hexByName = new Map<OidName, string>();
const nameByHex = new Map<string, OidName>();
for (const [name, dotted] of Object.entries(OID) as Array<[OidName, string]>) {
  const hex = oidContentHex(dotted);
  hexByName.set(name, hex);
  nameByHex.set(hex, name);
}

/** Hex of the DER content octets of a named OID. */
export function oidHex(name: OidName): string {
  return hexByName.get(name)!;
}

/** The name of a known OID from the hex of its content octets. */
export function oidNameFromHex(hex: string): OidName | undefined {
  return nameByHex.get(hex);
}
