import { checkIntegerContent, checkOidContent, decodeTime, DerError, encodeOidContent, expectTlv, readTlv, TAG_BIT_STRING, TAG_BOOLEAN, TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, TAG_SET, TAG_UTC_TIME, TAG_UTF8_STRING } from './der.js';
import type { Tlv } from './der.js';
import { OID } from './oids.js';
import type { CertificateProfileRef } from './types.js';

// The one reader of X.509 certificates (RFC 5280 §4.1) for the CA's post-sign profile check, the issuing CA's own
// certificate, and the broker's view of a TLS peer. Two layers:
//  - readCertificate: the strict DER structure, every field as a TLV into the caller's buffer (no copies), so the
//    profile check can compare bytes in place and see deviations (v1, unique IDs, duplicate extensions) to name them;
//  - readCertificateIdentity: the decoded facts a relying party needs (serial, names, validity, KU/EKU/CA flag,
//    key identifiers).
// Both throw DerError, and only DerError, on bytes that are not a DER certificate.

const TAG_VERSION = 0xa0; // [0] EXPLICIT Version
const TAG_ISSUER_UNIQUE_ID = 0x81; // [1] IMPLICIT UniqueIdentifier (RFC 5280 §4.1.2.8)
const TAG_SUBJECT_UNIQUE_ID = 0x82; // [2] IMPLICIT UniqueIdentifier
const TAG_EXTENSIONS = 0xa3; // [3] EXPLICIT Extensions
/** More than any sane certificate carries; bounds the work on hostile input. */
const MAX_EXTENSIONS = 64;

export interface CertificateExtension {
  /** The extnID OBJECT IDENTIFIER. */
  oid: Tlv;
  critical: boolean;
  /** The criticality BOOLEAN when encoded; DER omits the FALSE default (X.690 §11.5), so present means TRUE in DER. */
  criticalField: Tlv | undefined;
  /** The extnValue OCTET STRING; its contents are the DER of the extension value. */
  value: Tlv;
}

/** Every field of a certificate as a TLV into `der` (RFC 5280 §4.1). */
export interface CertificateStructure {
  der: Buffer;
  tbs: Tlv;
  /** 1, 2 or 3; 1 when the [0] field is absent (DEFAULT v1, RFC 5280 §4.1.2.1). */
  version: number;
  versionField: Tlv | undefined;
  serialNumber: Tlv;
  /** The AlgorithmIdentifier inside the TBSCertificate (RFC 5280 §4.1.2.3). */
  signature: Tlv;
  issuer: Tlv;
  notBefore: Tlv;
  notAfter: Tlv;
  subject: Tlv;
  subjectPublicKeyInfo: Tlv;
  /** The subjectPublicKey BIT STRING of the SPKI. */
  subjectPublicKey: Tlv;
  /** issuerUniqueID / subjectUniqueID fields present (RFC 5280 §4.1.2.8: CAs conforming to the profile omit them). */
  uniqueIdentifiers: number;
  /** The [3] field, when present. */
  extensionsField: Tlv | undefined;
  /** In certificate order, duplicates included (RFC 5280 §4.2 forbids them; the caller decides what to refuse). */
  extensions: CertificateExtension[];
  signatureAlgorithm: Tlv;
  signatureValue: Tlv;
}

/** Reads the structure of a DER certificate; `der` must be exactly one Certificate. */
export function readCertificate(der: Buffer): CertificateStructure {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== TAG_SEQUENCE || cert.end !== der.length) throw new DerError('certificate is not exactly one SEQUENCE');
  const tbs = expectTlv(der, cert.valueStart, cert.end, TAG_SEQUENCE, 'TBSCertificate');
  const signatureAlgorithm = expectTlv(der, tbs.end, cert.end, TAG_SEQUENCE, 'signatureAlgorithm');
  const signatureValue = expectTlv(der, signatureAlgorithm.end, cert.end, TAG_BIT_STRING, 'signatureValue');
  if (signatureValue.end !== cert.end) throw new DerError('bytes after the certificate signatureValue');

  const end = tbs.end;
  let pos = tbs.valueStart;
  let versionField: Tlv | undefined;
  let version = 1;
  if (pos < end && der[pos] === TAG_VERSION) {
    versionField = readTlv(der, pos, end);
    const value = expectTlv(der, versionField.valueStart, versionField.end, TAG_INTEGER, 'version');
    if (value.end !== versionField.end || value.end - value.valueStart !== 1 || der[value.valueStart]! > 2) {
      throw new DerError('version is not v1, v2 or v3');
    }
    version = der[value.valueStart]! + 1;
    pos = versionField.end;
  }
  const serialNumber = expectTlv(der, pos, end, TAG_INTEGER, 'serialNumber');
  checkIntegerContent(der, serialNumber.valueStart, serialNumber.end);
  const signature = expectTlv(der, serialNumber.end, end, TAG_SEQUENCE, 'signature');
  const issuer = expectTlv(der, signature.end, end, TAG_SEQUENCE, 'issuer');
  const validity = expectTlv(der, issuer.end, end, TAG_SEQUENCE, 'validity');
  const notBefore = readTime(der, validity.valueStart, validity.end, 'notBefore');
  const notAfter = readTime(der, notBefore.end, validity.end, 'notAfter');
  if (notAfter.end !== validity.end) throw new DerError('validity holds more than two times');
  const subject = expectTlv(der, validity.end, end, TAG_SEQUENCE, 'subject');
  const subjectPublicKeyInfo = expectTlv(der, subject.end, end, TAG_SEQUENCE, 'subjectPublicKeyInfo');
  const spkiAlgorithm = expectTlv(der, subjectPublicKeyInfo.valueStart, subjectPublicKeyInfo.end, TAG_SEQUENCE, 'SPKI algorithm');
  const subjectPublicKey = expectTlv(der, spkiAlgorithm.end, subjectPublicKeyInfo.end, TAG_BIT_STRING, 'subjectPublicKey');
  if (subjectPublicKey.end !== subjectPublicKeyInfo.end || subjectPublicKey.end === subjectPublicKey.valueStart) {
    throw new DerError('malformed subjectPublicKeyInfo');
  }

  pos = subjectPublicKeyInfo.end;
  let uniqueIdentifiers = 0;
  let extensionsField: Tlv | undefined;
  const extensions: CertificateExtension[] = [];
  let lastTag = 0;
  while (pos < end) {
    const field = readTlv(der, pos, end);
    pos = field.end;
    // The optional fields come once each, in this order (RFC 5280 §4.1).
    if (field.tag <= lastTag) throw new DerError('TBSCertificate optional fields out of order or repeated');
    lastTag = field.tag;
    if (field.tag === TAG_ISSUER_UNIQUE_ID || field.tag === TAG_SUBJECT_UNIQUE_ID) {
      uniqueIdentifiers++;
    } else if (field.tag === TAG_EXTENSIONS) {
      extensionsField = field;
      readExtensions(der, field, extensions);
    } else {
      throw new DerError(`unexpected TBSCertificate field with tag 0x${field.tag.toString(16)}`);
    }
  }
  return {
    der,
    tbs,
    version,
    versionField,
    serialNumber,
    signature,
    issuer,
    notBefore,
    notAfter,
    subject,
    subjectPublicKeyInfo,
    subjectPublicKey,
    uniqueIdentifiers,
    extensionsField,
    extensions,
    signatureAlgorithm,
    signatureValue,
  };
}

function readTime(der: Buffer, pos: number, limit: number, what: string): Tlv {
  const time = readTlv(der, pos, limit);
  if (time.tag !== TAG_UTC_TIME && time.tag !== TAG_GENERALIZED_TIME) throw new DerError(`${what} is not a Time`);
  return time;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1.2.9). */
function readExtensions(der: Buffer, field: Tlv, out: CertificateExtension[]): void {
  const list = expectTlv(der, field.valueStart, field.end, TAG_SEQUENCE, 'Extensions');
  if (list.end !== field.end || list.end === list.valueStart) throw new DerError('extensions field is not one non-empty SEQUENCE');
  for (let pos = list.valueStart; pos < list.end; ) {
    if (out.length === MAX_EXTENSIONS) throw new DerError('too many extensions');
    const ext = expectTlv(der, pos, list.end, TAG_SEQUENCE, 'Extension');
    pos = ext.end;
    const oid = expectTlv(der, ext.valueStart, ext.end, TAG_OID, 'extnID');
    checkOidContent(der, oid.valueStart, oid.end);
    let value = readTlv(der, oid.end, ext.end);
    let criticalField: Tlv | undefined;
    let critical = false;
    if (value.tag === TAG_BOOLEAN) {
      const flag = der[value.valueStart];
      if (value.end - value.valueStart !== 1 || (flag !== 0x00 && flag !== 0xff)) throw new DerError('criticality is not a DER BOOLEAN');
      criticalField = value;
      critical = flag === 0xff;
      value = readTlv(der, value.end, ext.end);
    }
    if (value.tag !== TAG_OCTET_STRING || value.end !== ext.end) throw new DerError('extnValue is not one OCTET STRING');
    out.push({ oid, critical, criticalField, value });
  }
}

// ─────────────── decoded facts ───────────────

/** Key usage bits as numbered in RFC 5280 §4.2.1.3: bit n is `1 << n`. */
export const KeyUsageBit = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;

/** What a relying party reads from a certificate. Buffers are views into the certificate DER, not copies. */
export interface CertificateIdentity {
  /** Hex of the serialNumber content octets, as encoded (a leading 00 kept). */
  serialHex: string;
  /** The issuer Name, DER. */
  issuerDer: Buffer;
  /** The subject Name, DER. */
  subjectDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Every commonName attribute value of the subject, in order. */
  commonNames: string[];
  /** subjectAltName uniformResourceIdentifier entries, in order (RFC 5280 §4.2.1.6). */
  sanUris: string[];
  /** subjectAltName entries of every other GeneralName type. */
  sanOtherNames: number;
  /** basicConstraints cA (RFC 5280 §4.2.1.9); false when the extension is absent. */
  isCa: boolean;
  /** keyUsage as KeyUsageBit flags; undefined when the extension is absent. */
  keyUsage: number | undefined;
  /** extKeyUsage KeyPurposeIds as hex of their OID content octets (compare with oidHex()); undefined when absent. */
  extendedKeyUsage: string[] | undefined;
  authorityKeyIdentifier: Buffer | undefined;
  subjectKeyIdentifier: Buffer | undefined;
  /** The enrolldProfile extension (docs/architecture.md §5); undefined when absent (certificates issued before profiles). */
  profile: CertificateProfileRef | undefined;
}

const PROFILE_OID = encodeOidContent(OID.enrolldProfile);

/** Whether an extension is enrolldProfile. */
export function isProfileExtension(der: Buffer, ext: CertificateExtension): boolean {
  return ext.oid.end - ext.oid.valueStart === PROFILE_OID.length && PROFILE_OID.compare(der, ext.oid.valueStart, ext.oid.end) === 0;
}

/**
 * enrolldProfile ::= SEQUENCE { name UTF8String, version INTEGER (1..2^31-1), group UTF8String OPTIONAL }. Certificates
 * issued before groups existed end after the version and read with no group. Throws DerError when malformed.
 */
export function profileOf(der: Buffer, ext: CertificateExtension): CertificateProfileRef {
  const seq = readTlv(der, ext.value.valueStart, ext.value.end);
  if (seq.tag !== TAG_SEQUENCE || seq.end !== ext.value.end) throw new DerError('enrolldProfile is not a SEQUENCE');
  const name = expectTlv(der, seq.valueStart, seq.end, TAG_UTF8_STRING, 'enrolldProfile name');
  const version = expectTlv(der, name.end, seq.end, TAG_INTEGER, 'enrolldProfile version');
  checkIntegerContent(der, version.valueStart, version.end);
  const length = version.end - version.valueStart;
  if (length > 4 || (der[version.valueStart]! & 0x80) !== 0) throw new DerError('enrolldProfile version out of range');
  const value = der.readUIntBE(version.valueStart, length);
  if (value === 0) throw new DerError('enrolldProfile version out of range');
  const profile: CertificateProfileRef = { name: der.toString('utf8', name.valueStart, name.end), version: value };
  if (version.end === seq.end) return profile;
  const group = expectTlv(der, version.end, seq.end, TAG_UTF8_STRING, 'enrolldProfile group');
  if (group.end !== seq.end) throw new DerError('bytes after the enrolldProfile group');
  profile.group = der.toString('utf8', group.valueStart, group.end);
  return profile;
}

// Content octets of the OIDs read here: id-at-commonName 2.5.4.3 and the id-ce arc 2.5.29 (RFC 5280 App. A).
const CN_OID_0 = 0x55;
const CN_OID_1 = 0x04;
const CN_OID_2 = 0x03;
const ID_CE_0 = 0x55;
const ID_CE_1 = 0x1d;
const ID_CE = { subjectKeyIdentifier: 14, keyUsage: 15, subjectAltName: 17, basicConstraints: 19, authorityKeyIdentifier: 35, extKeyUsage: 37 } as const;
const TAG_URI = 0x86; // GeneralName [6] uniformResourceIdentifier
const TAG_KEY_IDENTIFIER = 0x80; // AuthorityKeyIdentifier [0] keyIdentifier

/** Reads and decodes a DER certificate. Throws DerError when it is malformed or repeats an extension (RFC 5280 §4.2). */
export function readCertificateIdentity(der: Buffer): CertificateIdentity {
  return certificateIdentityOf(readCertificate(der));
}

/** Decodes the identity fields of a certificate already read with readCertificate. */
export function certificateIdentityOf(c: CertificateStructure): CertificateIdentity {
  const der = c.der;
  const identity: CertificateIdentity = {
    serialHex: der.toString('hex', c.serialNumber.valueStart, c.serialNumber.end),
    issuerDer: der.subarray(c.issuer.start, c.issuer.end),
    subjectDer: der.subarray(c.subject.start, c.subject.end),
    notBefore: decodeTime(der, c.notBefore),
    notAfter: decodeTime(der, c.notAfter),
    commonNames: commonNamesOf(der, c.subject),
    sanUris: [],
    sanOtherNames: 0,
    isCa: false,
    keyUsage: undefined,
    extendedKeyUsage: undefined,
    authorityKeyIdentifier: undefined,
    subjectKeyIdentifier: undefined,
    profile: undefined,
  };
  const seen = [0, 0, 0, 0]; // one bit per id-ce arc 0–127
  for (const ext of c.extensions) {
    const { oid } = ext;
    const isIdCe = oid.end - oid.valueStart === 3 && der[oid.valueStart] === ID_CE_0 && der[oid.valueStart + 1] === ID_CE_1;
    if (!isIdCe) {
      if (isProfileExtension(der, ext)) {
        if (identity.profile) throw new DerError('extension enrolldProfile appears twice');
        identity.profile = profileOf(der, ext);
      }
      continue;
    }
    const arc = der[oid.valueStart + 2]!;
    const bit = 1 << (arc & 31);
    if (seen[arc >> 5]! & bit) throw new DerError(`extension 2.5.29.${arc} appears twice`);
    seen[arc >> 5]! |= bit;
    const value = readTlv(der, ext.value.valueStart, ext.value.end);
    if (value.end !== ext.value.end) throw new DerError(`bytes after the value of extension 2.5.29.${arc}`);
    switch (arc) {
      case ID_CE.subjectAltName:
        readSubjectAltName(der, value, identity);
        break;
      case ID_CE.keyUsage:
        identity.keyUsage = keyUsageOf(der, value);
        break;
      case ID_CE.extKeyUsage:
        identity.extendedKeyUsage = keyPurposesOf(der, value);
        break;
      case ID_CE.basicConstraints:
        identity.isCa = isCaOf(der, value);
        break;
      case ID_CE.authorityKeyIdentifier:
        identity.authorityKeyIdentifier = authorityKeyIdOf(der, value);
        break;
      case ID_CE.subjectKeyIdentifier:
        if (value.tag !== TAG_OCTET_STRING) throw new DerError('subjectKeyIdentifier is not an OCTET STRING');
        identity.subjectKeyIdentifier = der.subarray(value.valueStart, value.end);
        break;
      default:
        break;
    }
  }
  return identity;
}

/** Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF AttributeTypeAndValue), RFC 5280 §4.1.2.4. */
function commonNamesOf(der: Buffer, name: Tlv): string[] {
  const out: string[] = [];
  for (let pos = name.valueStart; pos < name.end; ) {
    const rdn = expectTlv(der, pos, name.end, TAG_SET, 'RelativeDistinguishedName');
    pos = rdn.end;
    for (let p = rdn.valueStart; p < rdn.end; ) {
      const atv = expectTlv(der, p, rdn.end, TAG_SEQUENCE, 'AttributeTypeAndValue');
      p = atv.end;
      const type = expectTlv(der, atv.valueStart, atv.end, TAG_OID, 'attribute type');
      const value = readTlv(der, type.end, atv.end);
      if (value.end !== atv.end) throw new DerError('AttributeTypeAndValue holds more than a type and a value');
      const v = type.valueStart;
      if (type.end - v === 3 && der[v] === CN_OID_0 && der[v + 1] === CN_OID_1 && der[v + 2] === CN_OID_2) {
        out.push(der.toString('utf8', value.valueStart, value.end));
      }
    }
  }
  return out;
}

function readSubjectAltName(der: Buffer, names: Tlv, into: CertificateIdentity): void {
  if (names.tag !== TAG_SEQUENCE) throw new DerError('subjectAltName is not a SEQUENCE');
  for (let pos = names.valueStart; pos < names.end; ) {
    const name = readTlv(der, pos, names.end);
    pos = name.end;
    if (name.tag === TAG_URI) into.sanUris.push(der.toString('latin1', name.valueStart, name.end));
    else into.sanOtherNames++;
  }
}

/** KeyUsage ::= BIT STRING, first bit (MSB of the first content octet) is bit 0 (RFC 5280 §4.2.1.3). */
function keyUsageOf(der: Buffer, bits: Tlv): number {
  if (bits.tag !== TAG_BIT_STRING || bits.end - bits.valueStart < 1) throw new DerError('keyUsage is not a BIT STRING');
  let flags = 0;
  const octets = Math.min(bits.end - bits.valueStart - 1, 2); // bits 0–8 fit in two octets
  for (let i = 0; i < octets; i++) {
    const octet = der[bits.valueStart + 1 + i]!;
    for (let j = 0; j < 8; j++) if (octet & (0x80 >> j)) flags |= 1 << (i * 8 + j);
  }
  return flags;
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (RFC 5280 §4.2.1.12). */
function keyPurposesOf(der: Buffer, list: Tlv): string[] {
  if (list.tag !== TAG_SEQUENCE) throw new DerError('extKeyUsage is not a SEQUENCE');
  const out: string[] = [];
  for (let pos = list.valueStart; pos < list.end; ) {
    const purpose = expectTlv(der, pos, list.end, TAG_OID, 'KeyPurposeId');
    pos = purpose.end;
    out.push(der.toString('hex', purpose.valueStart, purpose.end));
  }
  return out;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } (RFC 5280 §4.2.1.9). */
function isCaOf(der: Buffer, constraints: Tlv): boolean {
  if (constraints.tag !== TAG_SEQUENCE) throw new DerError('basicConstraints is not a SEQUENCE');
  if (constraints.end === constraints.valueStart) return false;
  const first = readTlv(der, constraints.valueStart, constraints.end);
  return first.tag === TAG_BOOLEAN && first.end - first.valueStart === 1 && der[first.valueStart] !== 0x00;
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] OPTIONAL, … } (RFC 5280 §4.2.1.1). */
function authorityKeyIdOf(der: Buffer, aki: Tlv): Buffer | undefined {
  if (aki.tag !== TAG_SEQUENCE) throw new DerError('authorityKeyIdentifier is not a SEQUENCE');
  if (aki.end === aki.valueStart) return undefined;
  const first = readTlv(der, aki.valueStart, aki.end);
  return first.tag === TAG_KEY_IDENTIFIER ? der.subarray(first.valueStart, first.end) : undefined;
}
