import { identityUri, isIdentityKind, isValidDeviceId, isValidGroup } from '@enrolld/protocol';
import { derInteger, derOid, derSequence, derUtf8String, headerLength, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE, timeLength, writeHeader, writeTime } from './der.js';
import type { IssuerFacts } from './issuer.js';
import { spkiKeyBits } from './key-policy.js';
import { OID } from './oids.js';
import { isValidSerial } from './serial.js';
import type { CertificateProfileRef, DeviceCertificateSpec } from './types.js';
import {
  authorityKeyIdentifierExtension,
  ECDSA_SHA256,
  EXT_BASIC_CONSTRAINTS_LEAF,
  EXT_KEY_USAGE_DIGITAL_SIGNATURE,
  extension,
  internalError,
  keyIdentifierOf,
  OID_CN,
  VERSION_V3,
} from './x509-encoding.js';

// The identity certificate template (docs/architecture.md §5), for devices and services alike: subject CN=<id>, SAN
// URI urn:enrolld:<kind>:<id>, CA:FALSE, keyUsage digitalSignature, extKeyUsage clientAuth, SKI, AKI, and the
// enrolldProfile extension naming the profile and version it was issued under. The parts of the TBSCertificate that
// are the same for every device certificate are DER-encoded once per issuing CA; per certificate only the serial,
// validity, subject CN, SPKI, SKI and SAN URI are written, into one buffer (re-encoding the constants through a
// generic ASN.1 library was most of the issuance cost). This module encodes; it holds no key (signer.ts signs).

const OID_SKI = derOid(OID.subjectKeyIdentifier);
const OID_SAN = derOid(OID.subjectAltName);
/** extKeyUsage clientAuth only (RFC 5280 §4.2.1.12). */
export const EKU_CLIENT_AUTH = derSequence(derOid(OID.kpClientAuth));
const EXT_EKU_CLIENT_AUTH = extension(OID.extKeyUsage, false, EKU_CLIENT_AUTH);
const SKI_EXTENSION_LENGTH = 2 + OID_SKI.length + 2 + 2 + 20;
/** The number of extensions in every device certificate. */
export const DEVICE_EXTENSION_COUNT = 7;
const MAX_PROFILE_VERSION = 0x7fffffff;

/**
 * enrolldProfile ::= SEQUENCE { name UTF8String, version INTEGER, group UTF8String OPTIONAL } (docs/architecture.md §5),
 * non-critical. The group is left out when there is none, so such a certificate has the encoding of one issued before
 * groups existed.
 */
export function profileExtensionValue(profile: CertificateProfileRef): Buffer {
  const fields = [derUtf8String(profile.name), derInteger(profile.version)];
  if (profile.group !== undefined) fields.push(derUtf8String(profile.group));
  return derSequence(...fields);
}

function isValidProfileRef(profile: CertificateProfileRef | undefined): boolean {
  return profile !== undefined && isValidDeviceId(profile.name) && Number.isInteger(profile.version) && profile.version > 0 &&
    profile.version <= MAX_PROFILE_VERSION && (profile.group === undefined || isValidGroup(profile.group));
}

export interface DeviceProfile {
  /** The TBSCertificate of a device certificate; throws EnrollError('internal') when the spec is out of profile. */
  encodeTbs(spec: DeviceCertificateSpec): Buffer;
}

export function createDeviceProfile(issuer: IssuerFacts): DeviceProfile {
  const issuerNotAfterMs = issuer.notAfter.getTime();
  // The constant extensions, in the order they appear in every device certificate.
  const constantExtensions = Buffer.concat([
    EXT_BASIC_CONSTRAINTS_LEAF,
    EXT_KEY_USAGE_DIGITAL_SIGNATURE,
    EXT_EKU_CLIENT_AUTH,
    authorityKeyIdentifierExtension(issuer.keyIdentifier),
  ]);
  // TBS bytes from signature AlgorithmIdentifier through issuer Name: the same for every certificate.
  const algAndIssuer = Buffer.concat([ECDSA_SHA256, issuer.name]);

  function validateSpec(spec: DeviceCertificateSpec): void {
    if (!isValidDeviceId(spec.deviceId)) throw internalError('device certificate spec: invalid device id');
    if (!isIdentityKind(spec.kind)) throw internalError('device certificate spec: invalid identity kind');
    if (!isValidProfileRef(spec.profile)) throw internalError('device certificate spec: invalid profile name, version or group');
    if (!Buffer.isBuffer(spec.serial) || !isValidSerial(spec.serial)) {
      throw internalError('device certificate spec: serial must be a positive minimal DER INTEGER of ≤ 20 octets (RFC 5280 §4.1.2.2)');
    }
    const nb = spec.notBefore.getTime();
    const na = spec.notAfter.getTime();
    if (!Number.isFinite(nb) || !Number.isFinite(na) || nb % 1000 !== 0 || na % 1000 !== 0) {
      throw internalError('device certificate spec: validity must be whole seconds');
    }
    if (na < nb) throw internalError('device certificate spec: notAfter before notBefore');
    if (na > issuerNotAfterMs) throw internalError('device certificate spec: notAfter is past the issuing CA notAfter');
    if (spec.notBefore.getUTCFullYear() < 1950 || spec.notAfter.getUTCFullYear() > 9999) {
      throw internalError('device certificate spec: validity out of range');
    }
  }

  function encodeTbs(spec: DeviceCertificateSpec): Buffer {
    validateSpec(spec);
    let keyBits: Uint8Array;
    try {
      keyBits = spkiKeyBits(spec.spkiDer);
    } catch (cause) {
      throw internalError('device certificate spec: spkiDer is not a SubjectPublicKeyInfo', cause);
    }
    const ski = keyIdentifierOf(keyBits);
    const id = spec.deviceId; // ASCII by the device-id rule, so one byte per character
    const idLen = id.length;
    const uri = identityUri(spec.kind, id);
    const profileExt = extension(OID.enrolldProfile, false, profileExtensionValue(spec.profile));
    const uriLen = uri.length;
    const serial = spec.serial;
    const spki = spec.spkiDer;

    const serialLen = 2 + serial.length;
    const validityContent = timeLength(spec.notBefore) + timeLength(spec.notAfter);
    const atvContent = OID_CN.length + 2 + idLen; // SEQUENCE { OID cn, UTF8String id }
    const subjectLen = 2 + 2 + 2 + atvContent; // Name → SET → SEQUENCE
    const sanSeqContent = 2 + uriLen; // GeneralNames { [6] uri }
    const sanExtContent = OID_SAN.length + 2 + 2 + sanSeqContent;
    const sanExtLen = 2 + sanExtContent;
    const extsContent = constantExtensions.length + SKI_EXTENSION_LENGTH + sanExtLen + profileExt.length;
    const extsSeqLen = headerLength(extsContent) + extsContent;
    const tbsContent =
      VERSION_V3.length + serialLen + algAndIssuer.length + 2 + validityContent + subjectLen + spki.length +
      headerLength(extsSeqLen) + extsSeqLen;

    const out = Buffer.allocUnsafe(headerLength(tbsContent) + tbsContent);
    let p = writeHeader(out, 0, TAG_SEQUENCE, tbsContent);
    p += VERSION_V3.copy(out, p);
    out[p++] = TAG_INTEGER; // RFC 5280 §4.1.2.2
    out[p++] = serial.length;
    p += serial.copy(out, p);
    p += algAndIssuer.copy(out, p);
    out[p++] = TAG_SEQUENCE; // Validity (RFC 5280 §4.1.2.5)
    out[p++] = validityContent;
    p = writeTime(out, p, spec.notBefore);
    p = writeTime(out, p, spec.notAfter);
    out[p++] = TAG_SEQUENCE; // subject: CN=<device id> only
    out[p++] = subjectLen - 2;
    out[p++] = 0x31;
    out[p++] = subjectLen - 4;
    out[p++] = TAG_SEQUENCE;
    out[p++] = atvContent;
    p += OID_CN.copy(out, p);
    out[p++] = 0x0c; // UTF8String (RFC 5280 §4.1.2.6)
    out[p++] = idLen;
    p += out.write(id, p, 'latin1');
    p += spki.copy(out, p);
    p = writeHeader(out, p, 0xa3, extsSeqLen); // [3] EXPLICIT Extensions
    p = writeHeader(out, p, TAG_SEQUENCE, extsContent);
    p += constantExtensions.copy(out, p);
    out[p++] = TAG_SEQUENCE; // subjectKeyIdentifier, non-critical (RFC 5280 §4.2.1.2)
    out[p++] = SKI_EXTENSION_LENGTH - 2;
    p += OID_SKI.copy(out, p);
    out[p++] = TAG_OCTET_STRING;
    out[p++] = 22;
    out[p++] = TAG_OCTET_STRING;
    out[p++] = 20;
    p += ski.copy(out, p);
    out[p++] = TAG_SEQUENCE; // subjectAltName URI, non-critical as the subject is not empty (RFC 5280 §4.2.1.6)
    out[p++] = sanExtContent;
    p += OID_SAN.copy(out, p);
    out[p++] = TAG_OCTET_STRING;
    out[p++] = 2 + sanSeqContent;
    out[p++] = TAG_SEQUENCE;
    out[p++] = sanSeqContent;
    out[p++] = 0x86; // [6] uniformResourceIdentifier
    out[p++] = uriLen;
    p += out.write(uri, p, 'latin1');
    p += profileExt.copy(out, p);
    if (p !== out.length) throw internalError('device TBS length mismatch');
    return out;
  }

  return { encodeTbs };
}
