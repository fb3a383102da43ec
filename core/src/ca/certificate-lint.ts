import { identityUri, isValidDeviceId } from '@enrolld/protocol';
import { EnrollError } from '../errors.js';
import { decodeTime, isPositiveMinimalInteger, readChildren, readTlv, TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_SEQUENCE, TAG_SET, TAG_UTC_TIME, TAG_UTF8_STRING } from './der.js';
import type { Tlv } from './der.js';
import { isProfileExtension, profileOf, readCertificate } from './certificate-reader.js';
import { DEVICE_EXTENSION_COUNT, EKU_CLIENT_AUTH } from './device-profile.js';
import type { IssuerFacts } from './issuer.js';
import { isValidSerial } from './serial.js';
import type { DeviceCertificateSpec } from './types.js';
import { ECDSA_SHA256, internalError, KEY_USAGE_DIGITAL_SIGNATURE, keyIdentifierOf, OID_CN } from './x509-encoding.js';

// The post-sign profile check (a linter in the manner of Boulder's matchesCSR): every signed device certificate
// is read back with the shared certificate reader and each field compared with the spec and the device profile
// (docs/architecture.md), independently of how device-profile.ts wrote it. A mismatch aborts the issuance.

// id-ce arcs (2.5.29.x, RFC 5280 §4.2.1) of the profile's extensions.
const ARC_SKI = 14;
const ARC_KEY_USAGE = 15;
const ARC_SAN = 17;
const ARC_BASIC_CONSTRAINTS = 19;
const ARC_AKI = 35;
const ARC_EXT_KEY_USAGE = 37;

/**
 * Checks a signed device certificate against the spec and the profile. Throws EnrollError('internal') naming the
 * deviation. It runs on every issuance, so it compares bytes in place (no per-field copies).
 */
export function checkDeviceCertificate(der: Buffer, spec: DeviceCertificateSpec, issuer: IssuerFacts): void {
  try {
    lint(der, spec, issuer);
  } catch (error) {
    if (error instanceof EnrollError) throw error;
    throw internalError('issued certificate failed the profile check: malformed DER', error);
  }
}

const fail = (what: string): never => {
  throw internalError(`issued certificate failed the profile check: ${what}`);
};

function lint(der: Buffer, spec: DeviceCertificateSpec, issuer: IssuerFacts): void {
  const c = readCertificate(der);
  if (!sameBytes(der, c.signatureAlgorithm, ECDSA_SHA256)) fail('signatureAlgorithm is not ecdsa-with-SHA256');
  checkEcdsaSignatureValue(der, c.signatureValue);

  if (c.version !== 3) fail('version is not v3');
  if (!isValidSerial(der.subarray(c.serialNumber.valueStart, c.serialNumber.end))) {
    fail('serialNumber is not positive, minimal and ≤ 20 octets (RFC 5280 §4.1.2.2)');
  }
  if (!sameContent(der, c.serialNumber, spec.serial)) fail('serialNumber differs from the spec');
  if (!sameBytes(der, c.signature, ECDSA_SHA256)) fail('TBS signature algorithm is not ecdsa-with-SHA256');
  if (!sameBytes(der, c.issuer, issuer.name)) fail('issuer is not the issuing CA subject');

  checkTime(der, c.notBefore, spec.notBefore, 'notBefore');
  checkTime(der, c.notAfter, spec.notAfter, 'notAfter');
  if (spec.notAfter.getTime() > issuer.notAfter.getTime()) fail('notAfter is past the issuing CA notAfter');

  checkSubject(der, c.subject, spec.deviceId);
  if (!sameBytes(der, c.subjectPublicKeyInfo, spec.spkiDer)) fail('subjectPublicKeyInfo differs from the CSR key');
  if (c.uniqueIdentifiers > 0 || !c.extensionsField) fail('extensions missing, or fields after them (no unique IDs allowed)');

  if (c.extensions.length > DEVICE_EXTENSION_COUNT) fail(`more than the ${DEVICE_EXTENSION_COUNT} profile extensions`);
  let seen = 0;
  let seenProfile = false;
  for (const ext of c.extensions) {
    if (ext.criticalField && !ext.critical) fail('criticality is not DER TRUE');
    const { oid, critical } = ext;
    if (isProfileExtension(der, ext)) {
      if (seenProfile) fail('duplicate extension');
      seenProfile = true;
      const profile = profileOf(der, ext);
      if (critical || profile.name !== spec.profile.name || profile.version !== spec.profile.version || profile.group !== spec.profile.group) {
        fail('enrolldProfile must be non-critical and name the spec profile, version and group');
      }
      continue;
    }
    // Every other profile extension is id-ce (2.5.29.x): content 55 1d xx.
    if (oid.end - oid.valueStart !== 3 || der[oid.valueStart] !== 0x55 || der[oid.valueStart + 1] !== 0x1d) fail('unexpected extension');
    const arc = der[oid.valueStart + 2]!;
    const bit = 1 << (arc & 0x1f);
    if (seen & bit) fail('duplicate extension'); // RFC 5280 §4.2
    seen |= bit;
    const v = ext.value.valueStart;
    const end = ext.value.end;
    const vLen = end - v;
    switch (arc) {
      case ARC_BASIC_CONSTRAINTS: // critical, CA:FALSE, no pathLen → empty SEQUENCE
        if (!critical || vLen !== 2 || der[v] !== TAG_SEQUENCE || der[v + 1] !== 0) fail('basicConstraints must be critical CA:FALSE without pathLen');
        break;
      case ARC_KEY_USAGE:
        if (!critical || KEY_USAGE_DIGITAL_SIGNATURE.compare(der, v, end) !== 0) fail('keyUsage must be critical digitalSignature only');
        break;
      case ARC_EXT_KEY_USAGE:
        if (critical || EKU_CLIENT_AUTH.compare(der, v, end) !== 0) fail('extKeyUsage must be clientAuth only, non-critical');
        break;
      case ARC_SKI: {
        // SHA-1 of the certificate's own subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1)
        const expected = keyIdentifierOf(der.subarray(c.subjectPublicKey.valueStart + 1, c.subjectPublicKey.end));
        if (critical || vLen !== 22 || der[v] !== 0x04 || der[v + 1] !== 20 || expected.compare(der, v + 2, end) !== 0) {
          fail('subjectKeyIdentifier is not SHA-1 of the subject key (RFC 5280 §4.2.1.2)');
        }
        break;
      }
      case ARC_AKI: {
        const k = issuer.keyIdentifier;
        if (critical || vLen !== 4 + k.length || der[v] !== TAG_SEQUENCE || der[v + 1] !== 2 + k.length || der[v + 2] !== 0x80 || der[v + 3] !== k.length || k.compare(der, v + 4, end) !== 0) {
          fail('authorityKeyIdentifier is not the issuing CA key id');
        }
        break;
      }
      case ARC_SAN: {
        const uri = identityUri(spec.kind, spec.deviceId);
        const n = uri.length;
        if (critical || vLen !== 4 + n || der[v] !== TAG_SEQUENCE || der[v + 1] !== 2 + n || der[v + 2] !== 0x86 || der[v + 3] !== n || der.toString('latin1', v + 4, end) !== uri) {
          fail('subjectAltName must be exactly the identity URI');
        }
        break;
      }
      default:
        fail(`unexpected extension 2.5.29.${arc}`);
    }
  }
  if (c.extensions.length !== DEVICE_EXTENSION_COUNT) fail(`${c.extensions.length} extensions, expected exactly ${DEVICE_EXTENSION_COUNT}`);
}

/** subject: exactly one RDN holding exactly one CN, a UTF8String equal to the device id (docs/architecture.md). */
function checkSubject(der: Buffer, subject: Tlv, deviceId: string): void {
  if (subject.end === subject.valueStart) fail('subject must be exactly CN=<device id>');
  const rdn = readTlv(der, subject.valueStart, subject.end);
  if (rdn.tag !== TAG_SET || rdn.end !== subject.end) fail('subject must be exactly CN=<device id>');
  const atv = readTlv(der, rdn.valueStart, rdn.end);
  if (atv.tag !== TAG_SEQUENCE || atv.end !== rdn.end) fail('subject must be exactly CN=<device id>');
  const cnType = readTlv(der, atv.valueStart, atv.end);
  const cnValue = cnType.end < atv.end ? readTlv(der, cnType.end, atv.end) : fail('subject attribute has no value');
  if (!sameBytes(der, cnType, OID_CN) || cnValue.tag !== TAG_UTF8_STRING || cnValue.end !== atv.end) fail('subject attribute is not a UTF8String CN');
  const cn = der.toString('latin1', cnValue.valueStart, cnValue.end);
  if (!isValidDeviceId(cn) || cn !== deviceId) fail('subject CN is not the device id');
}

/** Whether the whole TLV `t` in `der` equals `expected`, compared in place. */
function sameBytes(der: Buffer, t: Tlv, expected: Buffer): boolean {
  return t.end - t.start === expected.length && expected.compare(der, t.start, t.end) === 0;
}

/** Whether the contents of TLV `t` equal `expected`. */
function sameContent(der: Buffer, t: Tlv, expected: Buffer): boolean {
  return t.end - t.valueStart === expected.length && expected.compare(der, t.valueStart, t.end) === 0;
}

function checkTime(der: Buffer, t: Tlv, expected: Date, what: string): void {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  const wantTag = expected.getUTCFullYear() >= 2050 ? TAG_GENERALIZED_TIME : TAG_UTC_TIME;
  if (t.tag !== wantTag) fail(`${what} uses the wrong time type for its year`);
  if (decodeTime(der, t).getTime() !== expected.getTime()) fail(`${what} differs from the spec`);
}

/** The signature value must be a DER Ecdsa-Sig-Value with positive r and s (RFC 3279 §2.2.3). */
function checkEcdsaSignatureValue(der: Buffer, sig: Tlv): void {
  if (sig.end === sig.valueStart || der[sig.valueStart] !== 0) fail('signature BIT STRING has unused bits');
  const seq = readTlv(der, sig.valueStart + 1, sig.end);
  if (seq.tag !== TAG_SEQUENCE || seq.end !== sig.end) fail('signature is not an Ecdsa-Sig-Value');
  const [r, s, extra] = readChildren(der, seq, 3);
  if (!r || !s || extra || r.tag !== TAG_INTEGER || s.tag !== TAG_INTEGER) fail('signature is not an Ecdsa-Sig-Value');
  for (const v of [r!, s!]) {
    if (v.end - v.valueStart > 33 || !isPositiveMinimalInteger(der.subarray(v.valueStart, v.end))) fail('signature r or s out of range');
  }
}
