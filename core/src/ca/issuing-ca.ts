import * as nodeCrypto from 'node:crypto';
import { createHash, sign as cryptoSign, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { deviceUri, isValidDeviceId } from '@enrolld/protocol';
import { EnrollError } from '../errors.js';
import {
  decodeTime,
  DerError,
  derBoolean,
  derEnumerated,
  derExplicit,
  derImplicit,
  derInteger,
  derOctetString,
  derOid,
  derSequence,
  derTime,
  derUtf8String,
  derSet,
  expectTlv,
  fromPem,
  headerLength,
  isPositiveMinimalInteger,
  readChildren,
  readTlv,
  TAG_BIT_STRING,
  TAG_GENERALIZED_TIME,
  TAG_INTEGER,
  TAG_OCTET_STRING,
  TAG_SEQUENCE,
  TAG_UTC_TIME,
  timeLength,
  tlv,
  toPem,
  writeHeader,
  writeTime,
} from './der.js';
import type { Tlv } from './der.js';
import { spkiKeyBits } from './key-policy.js';
import { OID } from './oids.js';
import { generateSerial, isValidSerial, serialFromHex } from './serial.js';
import type { CrlSpec, DeviceCertificateSpec, IssuingCa } from './types.js';
import { deviceValidity } from './validity.js';
import type { Validity } from './validity.js';

// The issuing CA. Its private key lives only in this module (DESIGN.md §1): callers get functions, never the key.
// Device certificates follow one fixed profile (DESIGN.md §2). The parts of the TBSCertificate that are the same for
// every device certificate are DER-encoded once, at creation; per certificate only the serial, validity, subject CN,
// SPKI, SKI and SAN URI are written (DESIGN.md §7: pkijs spends most of its time re-encoding constants).

export interface CreateIssuingCaOptions {
  issuingCertificatePem: string;
  issuingPrivateKey: KeyObject;
  rootCertificatePem: string;
}

export interface ServerCertificateRequest {
  /** DNS names and IP addresses; localhost, 127.0.0.1 and ::1 are always included. */
  serverNames: readonly string[];
  /** SubjectPublicKeyInfo of the server's key. */
  spkiDer: Buffer;
  now: Date;
  /** Default 365 days; clamped to the issuing CA's notAfter. */
  lifetimeSeconds?: number;
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

const sha1 =
  // crypto.hash (Node ≥ 20.12) is the cheapest one-shot digest; a named import would fail to link on 20.11.
  typeof nodeCrypto.hash === 'function'
    ? (data: Uint8Array): Buffer => nodeCrypto.hash('sha1', data, 'buffer')
    : (data: Uint8Array): Buffer => createHash('sha1').update(data).digest();

const internal = (detail: string, cause?: unknown): EnrollError =>
  new EnrollError('internal', detail, cause === undefined ? {} : { cause });

// ─────────────── constant DER pieces (RFC 5280 §4.1, §4.2.1) ───────────────

/** [0] EXPLICIT Version v3 (RFC 5280 §4.1.2.1). */
const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
/** AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758 §3.2). */
const ECDSA_SHA256 = derSequence(derOid(OID.ecdsaWithSha256));
const OID_CN = derOid(OID.commonName);
const OID_SKI = derOid(OID.subjectKeyIdentifier);
const OID_SAN = derOid(OID.subjectAltName);
const CRITICAL = derBoolean(true);

const extension = (oid: string, critical: boolean, value: Uint8Array): Buffer =>
  critical ? derSequence(derOid(oid), CRITICAL, derOctetString(value)) : derSequence(derOid(oid), derOctetString(value));

/** basicConstraints CA:FALSE, critical: cA DEFAULT FALSE is omitted in DER, leaving an empty SEQUENCE. */
const EXT_BASIC_CONSTRAINTS_LEAF = extension(OID.basicConstraints, true, derSequence());
/** keyUsage digitalSignature only, critical (RFC 5280 §4.2.1.3): bit 0 → one octet 0x80 with 7 unused bits. */
const EXT_KEY_USAGE_DIGITAL_SIGNATURE = extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80]));
/** extKeyUsage clientAuth only (RFC 5280 §4.2.1.12). */
const EXT_EKU_CLIENT_AUTH = extension(OID.extKeyUsage, false, derSequence(derOid(OID.kpClientAuth)));
const EXT_EKU_SERVER_AUTH = extension(OID.extKeyUsage, false, derSequence(derOid(OID.kpServerAuth)));

const SKI_EXTENSION_LENGTH = 2 + OID_SKI.length + 2 + 2 + 20;

// ─────────────── parsing our own CA certificates (off the hot path) ───────────────

interface CaCertificateFields {
  der: Buffer;
  subject: Buffer;
  notBefore: Date;
  notAfter: Date;
  keyIdentifier: Buffer;
}

function readCaCertificate(der: Buffer): CaCertificateFields {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== TAG_SEQUENCE || cert.end !== der.length) throw new DerError('certificate is not one SEQUENCE');
  const [tbs] = readChildren(der, cert, 3);
  if (!tbs || tbs.tag !== TAG_SEQUENCE) throw new DerError('no TBSCertificate');
  const fields = readChildren(der, tbs, 10);
  const [version, , , , validity, subject, spki, ...rest] = fields;
  if (!version || version.tag !== 0xa0 || !validity || !subject || !spki) throw new DerError('not a v3 certificate');
  const [nb, na] = readChildren(der, validity, 2);
  if (!nb || !na) throw new DerError('bad validity');
  let keyIdentifier: Buffer | undefined;
  const extsField = rest.find((f) => f.tag === 0xa3);
  if (extsField) {
    const [exts] = readChildren(der, extsField, 1);
    if (exts) {
      for (const ext of readChildren(der, exts, 64)) {
        const parts = readChildren(der, ext, 3);
        const oid = parts[0];
        const value = parts[parts.length - 1];
        if (oid && value && der.subarray(oid.start, oid.end).equals(OID_SKI)) {
          const inner = expectTlv(der, value.valueStart, value.end, TAG_OCTET_STRING, 'SKI');
          keyIdentifier = Buffer.from(der.subarray(inner.valueStart, inner.end));
        }
      }
    }
  }
  const spkiDer = der.subarray(spki.start, spki.end);
  return {
    der,
    subject: Buffer.from(der.subarray(subject.start, subject.end)),
    notBefore: decodeTime(der, nb),
    notAfter: decodeTime(der, na),
    // RFC 5280 §4.2.1.2 method 1 when the CA certificate carries no SKI.
    keyIdentifier: keyIdentifier ?? sha1(spkiKeyBits(spkiDer)),
  };
}

// ─────────────── the CA ───────────────

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
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('issuing CA key must be an EC P-256 private key');
  }
  if (!issuingX509.ca) throw new Error('issuing certificate is not a CA certificate');
  if (!issuingX509.checkPrivateKey(key)) throw new Error('issuing CA private key does not match the issuing certificate');
  let rootDer: Buffer | undefined;
  if (rootCertificatePem !== undefined) {
    rootDer = fromPem(rootCertificatePem, 'CERTIFICATE');
    const rootX509 = new X509Certificate(rootDer);
    if (!rootX509.ca || !issuingX509.checkIssued(rootX509) || !issuingX509.verify(rootX509.publicKey)) {
      throw new Error('issuing certificate is not signed by the root certificate');
    }
  }
  const issuing = readCaCertificate(issuingDer);
  const issuerName = issuing.subject;
  const keyIdentifier = issuing.keyIdentifier;
  const issuerNotAfterMs = issuing.notAfter.getTime();

  // authorityKeyIdentifier { keyIdentifier [0] } (RFC 5280 §4.2.1.1), non-critical.
  const akiValue = derSequence(derImplicit(0, keyIdentifier));
  const extAki = extension(OID.authorityKeyIdentifier, false, akiValue);
  // The constant extensions, in the order they appear in every device certificate.
  const constantExtensions = Buffer.concat([EXT_BASIC_CONSTRAINTS_LEAF, EXT_KEY_USAGE_DIGITAL_SIGNATURE, EXT_EKU_CLIENT_AUTH, extAki]);
  // TBS bytes from signature AlgorithmIdentifier through issuer Name: the same for every certificate.
  const algAndIssuer = Buffer.concat([ECDSA_SHA256, issuerName]);

  // Only TBS buffers this CA built get a signature: the profile is enforced by construction (RELIABILITY I5).
  const built = new WeakSet<Buffer>();

  function validateSpec(spec: DeviceCertificateSpec): void {
    if (!isValidDeviceId(spec.deviceId)) throw internal('device certificate spec: invalid device id');
    if (!Buffer.isBuffer(spec.serial) || !isValidSerial(spec.serial)) {
      throw internal('device certificate spec: serial must be a positive minimal DER INTEGER of ≤ 20 octets (RFC 5280 §4.1.2.2)');
    }
    const nb = spec.notBefore.getTime();
    const na = spec.notAfter.getTime();
    if (!Number.isFinite(nb) || !Number.isFinite(na) || nb % 1000 !== 0 || na % 1000 !== 0) {
      throw internal('device certificate spec: validity must be whole seconds');
    }
    if (na < nb) throw internal('device certificate spec: notAfter before notBefore');
    if (na > issuerNotAfterMs) throw internal('device certificate spec: notAfter is past the issuing CA notAfter');
    if (spec.notBefore.getUTCFullYear() < 1950 || spec.notAfter.getUTCFullYear() > 9999) {
      throw internal('device certificate spec: validity out of range');
    }
  }

  function buildDeviceTbs(spec: DeviceCertificateSpec): Buffer {
    validateSpec(spec);
    let keyBits: Uint8Array;
    try {
      keyBits = spkiKeyBits(spec.spkiDer);
    } catch (cause) {
      throw internal('device certificate spec: spkiDer is not a SubjectPublicKeyInfo', cause);
    }
    // SKI: SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 §4.2.1.2 method 1).
    const ski = sha1(keyBits);
    const id = spec.deviceId; // ASCII by the device-id rule, so one byte per character
    const idLen = id.length;
    const uri = deviceUri(id);
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
    const extsContent = constantExtensions.length + SKI_EXTENSION_LENGTH + sanExtLen;
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
    out[p++] = TAG_SEQUENCE; // subject: CN=<device id> only (DESIGN.md §2)
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
    if (p !== out.length) throw internal('device TBS length mismatch');
    built.add(out);
    return out;
  }

  function assemble(tbs: Buffer, signature: Buffer): Buffer {
    const sigBitsLen = signature.length + 1;
    const content = tbs.length + ECDSA_SHA256.length + headerLength(sigBitsLen) + sigBitsLen;
    const out = Buffer.allocUnsafe(headerLength(content) + content);
    let p = writeHeader(out, 0, TAG_SEQUENCE, content);
    p += tbs.copy(out, p);
    p += ECDSA_SHA256.copy(out, p);
    p = writeHeader(out, p, TAG_BIT_STRING, sigBitsLen);
    out[p++] = 0;
    signature.copy(out, p);
    return out;
  }

  function signCertificate(tbsDer: Buffer): Buffer {
    if (!built.has(tbsDer)) throw internal('refusing to sign a TBSCertificate that buildDeviceTbs did not build');
    // ECDSA P-256 with SHA-256, DER signature (RFC 5758 §3.2, RFC 3279 §2.2.3).
    return assemble(tbsDer, cryptoSign('sha256', tbsDer, key));
  }

  function checkIssued(certificateDer: Buffer, spec: DeviceCertificateSpec): void {
    try {
      checkDeviceCertificate(certificateDer, spec, { issuerName, keyIdentifier, issuerNotAfterMs });
    } catch (error) {
      if (error instanceof EnrollError) throw error;
      throw internal('issued certificate failed the profile check: malformed DER', error);
    }
  }

  function signCrl(spec: CrlSpec): Buffer {
    if (!(spec.thisUpdate.getTime() <= spec.nextUpdate.getTime())) throw internal('CRL nextUpdate before thisUpdate');
    if (spec.crlNumber < 0n || spec.crlNumber >= 1n << 159n) throw internal('CRL number must be 0 … 2^159 − 1 (RFC 5280 §5.2.3)');
    const seen = new Set<string>();
    const entries = spec.entries.map((entry) => {
      let serial: Buffer;
      try {
        serial = serialFromHex(entry.serial.toLowerCase());
      } catch (cause) {
        throw internal(`CRL entry serial ${JSON.stringify(entry.serial.slice(0, 48))} is not a valid serial`, cause);
      }
      const hex = serial.toString('hex');
      if (seen.has(hex)) throw internal(`CRL entry ${hex} listed twice`);
      seen.add(hex);
      if (!Number.isInteger(entry.reasonCode) || entry.reasonCode < 0 || entry.reasonCode > 10 || entry.reasonCode === 7) {
        throw internal(`CRL entry ${hex}: invalid CRLReason ${entry.reasonCode} (RFC 5280 §5.3.1)`);
      }
      const parts: Buffer[] = [tlv(TAG_INTEGER, serial), derTime(wholeSeconds(entry.revokedAt))];
      // RFC 5280 §5.3.1: reasonCode unspecified (0) SHOULD be absent rather than present.
      if (entry.reasonCode !== 0) {
        parts.push(derSequence(extension(OID.crlReason, false, derEnumerated(entry.reasonCode))));
      }
      return derSequence(...parts);
    });
    const tbsParts: Buffer[] = [
      derInteger(1), // v2 (RFC 5280 §5.1.2.1): required because extensions are present
      ECDSA_SHA256,
      issuerName,
      derTime(wholeSeconds(spec.thisUpdate)),
      derTime(wholeSeconds(spec.nextUpdate)),
    ];
    // RFC 5280 §5.1.2.6: when there are no revoked certificates, the list MUST be absent.
    if (entries.length > 0) tbsParts.push(derSequence(...entries));
    tbsParts.push(
      derExplicit(
        0,
        derSequence(
          extAki, // RFC 5280 §5.2.1: conforming CRL issuers MUST include AKI
          extension(OID.crlNumber, false, derInteger(spec.crlNumber)), // RFC 5280 §5.2.3: MUST include
        ),
      ),
    );
    const tbs = derSequence(...tbsParts);
    return assemble(tbs, cryptoSign('sha256', tbs, key));
  }

  function signServerCertificate(request: ServerCertificateRequest): Buffer {
    const nowMs = Math.floor(request.now.getTime() / 1000) * 1000;
    const lifetime = request.lifetimeSeconds ?? 365 * 24 * 3600;
    const notBefore = new Date(nowMs - 3600 * 1000);
    const notAfter = new Date(Math.min(nowMs + lifetime * 1000 - 1000, issuerNotAfterMs));
    const { dns, ips } = splitServerNames(request.serverNames);
    const keyBits = spkiKeyBits(request.spkiDer);
    const commonName = dns.find((n) => n !== 'localhost') ?? 'localhost';
    const generalNames = [...dns.map((n) => derImplicit(2, Buffer.from(n, 'ascii'))), ...ips.map((b) => derImplicit(7, b))];
    const tbs = derSequence(
      VERSION_V3,
      tlv(TAG_INTEGER, generateSerial()),
      ECDSA_SHA256,
      issuerName,
      derSequence(derTime(notBefore), derTime(notAfter)),
      derSequence(derSet(derSequence(OID_CN, derUtf8String(commonName)))),
      request.spkiDer,
      derExplicit(
        3,
        derSequence(
          EXT_BASIC_CONSTRAINTS_LEAF,
          EXT_KEY_USAGE_DIGITAL_SIGNATURE,
          EXT_EKU_SERVER_AUTH,
          extension(OID.subjectKeyIdentifier, false, derOctetString(sha1(keyBits))),
          extAki,
          extension(OID.subjectAltName, false, derSequence(...generalNames)),
        ),
      ),
    );
    return assemble(tbs, cryptoSign('sha256', tbs, key));
  }

  return {
    certificateDer: issuingDer,
    chainPem: toPem('CERTIFICATE', issuingDer) + (rootDer ? toPem('CERTIFICATE', rootDer) : ''),
    rootPem: rootDer ? toPem('CERTIFICATE', rootDer) : '',
    notBefore: issuing.notBefore,
    notAfter: issuing.notAfter,
    keyIdentifier,
    deviceValidity: (now, lifetimeSeconds, backdateSeconds) => deviceValidity(now, lifetimeSeconds, backdateSeconds, issuing.notAfter),
    buildDeviceTbs,
    signCertificate,
    checkIssued,
    signCrl,
    signServerCertificate,
  };
}

const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

// ─────────────── post-issuance profile check (RELIABILITY CERT-04, Boulder matchesCSR) ───────────────

interface IssuerFacts {
  issuerName: Buffer;
  keyIdentifier: Buffer;
  issuerNotAfterMs: number;
}

const KU_DIGITAL_SIGNATURE = Buffer.from([0x03, 0x02, 0x07, 0x80]);
const EKU_CLIENT_AUTH_ONLY = derSequence(derOid(OID.kpClientAuth));

/**
 * Re-parses a signed device certificate with the strict DER reader and checks every field against the spec and
 * the profile, independently of how buildDeviceTbs wrote it. Throws EnrollError('internal') naming the deviation.
 * It runs on every issuance, so it walks the TLVs in order and compares bytes in place (no per-field copies).
 */
export function checkDeviceCertificate(der: Buffer, spec: DeviceCertificateSpec, issuer: IssuerFacts): void {
  const fail = (what: string): never => {
    throw internal(`issued certificate failed the profile check: ${what}`);
  };
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== TAG_SEQUENCE || cert.end !== der.length) fail('not exactly one SEQUENCE');
  const tbs = readTlv(der, cert.valueStart, cert.end);
  if (tbs.tag !== TAG_SEQUENCE) fail('TBSCertificate is not a SEQUENCE');
  const sigAlg = readTlv(der, tbs.end, cert.end);
  if (!sameBytes(der, sigAlg, ECDSA_SHA256)) fail('signatureAlgorithm is not ecdsa-with-SHA256');
  const sig = readTlv(der, sigAlg.end, cert.end);
  if (sig.tag !== TAG_BIT_STRING || sig.end !== cert.end) fail('Certificate structure');
  checkEcdsaSignatureValue(der, sig, fail);

  const field = (pos: number): Tlv => (pos < tbs.end ? readTlv(der, pos, tbs.end) : fail('TBSCertificate is missing fields'));
  const version = field(tbs.valueStart);
  if (!sameBytes(der, version, VERSION_V3)) fail('version is not v3');
  const serial = field(version.end);
  if (serial.tag !== TAG_INTEGER) fail('serialNumber is not an INTEGER');
  if (!isValidSerial(der.subarray(serial.valueStart, serial.end))) fail('serialNumber is not positive, minimal and ≤ 20 octets (RFC 5280 §4.1.2.2)');
  if (!sameContent(der, serial, spec.serial)) fail('serialNumber differs from the spec');
  const alg = field(serial.end);
  if (!sameBytes(der, alg, ECDSA_SHA256)) fail('TBS signature algorithm is not ecdsa-with-SHA256');
  const issuerTlv = field(alg.end);
  if (!sameBytes(der, issuerTlv, issuer.issuerName)) fail('issuer is not the issuing CA subject');

  const validity = field(issuerTlv.end);
  if (validity.tag !== TAG_SEQUENCE) fail('validity is not a SEQUENCE');
  const nb = readTlv(der, validity.valueStart, validity.end);
  const na = nb.end < validity.end ? readTlv(der, nb.end, validity.end) : fail('validity must hold two times');
  if (na.end !== validity.end) fail('validity must hold two times');
  checkTime(der, nb, spec.notBefore, 'notBefore', fail);
  checkTime(der, na, spec.notAfter, 'notAfter', fail);
  if (spec.notAfter.getTime() > issuer.issuerNotAfterMs) fail('notAfter is past the issuing CA notAfter');

  // subject: exactly one RDN holding exactly one CN, a UTF8String equal to the device id.
  const subject = field(validity.end);
  if (subject.tag !== TAG_SEQUENCE || subject.end === subject.valueStart) fail('subject must be exactly CN=<device id>');
  const rdn = readTlv(der, subject.valueStart, subject.end);
  if (rdn.tag !== 0x31 || rdn.end !== subject.end) fail('subject must be exactly CN=<device id>');
  const atv = readTlv(der, rdn.valueStart, rdn.end);
  if (atv.tag !== TAG_SEQUENCE || atv.end !== rdn.end) fail('subject must be exactly CN=<device id>');
  const cnType = readTlv(der, atv.valueStart, atv.end);
  const cnValue = cnType.end < atv.end ? readTlv(der, cnType.end, atv.end) : fail('subject attribute has no value');
  if (!sameBytes(der, cnType, OID_CN) || cnValue.tag !== 0x0c || cnValue.end !== atv.end) fail('subject attribute is not a UTF8String CN');
  const cn = der.toString('latin1', cnValue.valueStart, cnValue.end);
  if (!isValidDeviceId(cn) || cn !== spec.deviceId) fail('subject CN is not the device id');

  const spki = field(subject.end);
  if (!sameBytes(der, spki, spec.spkiDer)) fail('subjectPublicKeyInfo differs from the CSR key');
  const spkiAlg = readTlv(der, spki.valueStart, spki.end);
  const keyBits = readTlv(der, spkiAlg.end, spki.end);

  const exts = field(spki.end);
  if (exts.tag !== 0xa3 || exts.end !== tbs.end) fail('extensions missing, or fields after them (no unique IDs allowed)');
  const extSeq = readTlv(der, exts.valueStart, exts.end);
  if (extSeq.tag !== TAG_SEQUENCE || extSeq.end !== exts.end) fail('extensions is not one SEQUENCE');
  let seen = 0;
  let count = 0;
  for (let pos = extSeq.valueStart; pos < extSeq.end; ) {
    const ext = readTlv(der, pos, extSeq.end);
    pos = ext.end;
    if (++count > 6) fail('more than the 6 profile extensions');
    if (ext.tag !== TAG_SEQUENCE) fail('Extension is not a SEQUENCE');
    const oid = readTlv(der, ext.valueStart, ext.end);
    let next = oid.end < ext.end ? readTlv(der, oid.end, ext.end) : fail('malformed Extension');
    let critical = false;
    if (next.tag !== TAG_OCTET_STRING) {
      if (!sameBytes(der, next, CRITICAL)) fail('criticality is not DER TRUE');
      critical = true;
      next = next.end < ext.end ? readTlv(der, next.end, ext.end) : fail('malformed Extension');
    }
    if (next.tag !== TAG_OCTET_STRING || next.end !== ext.end) fail('extnValue is not an OCTET STRING');
    // Every profile extension is id-ce (2.5.29.x): content 55 1d xx.
    if (oid.tag !== 0x06 || oid.end - oid.valueStart !== 3 || der[oid.valueStart] !== 0x55 || der[oid.valueStart + 1] !== 0x1d) {
      fail('unexpected extension');
    }
    const arc = der[oid.valueStart + 2]!;
    const bit = 1 << (arc & 0x1f);
    if (seen & bit) fail('duplicate extension'); // RFC 5280 §4.2
    seen |= bit;
    const v = next.valueStart;
    const vLen = next.end - v;
    switch (arc) {
      case 19: // basicConstraints: critical, CA:FALSE, no pathLen → empty SEQUENCE
        if (!critical || vLen !== 2 || der[v] !== TAG_SEQUENCE || der[v + 1] !== 0) fail('basicConstraints must be critical CA:FALSE without pathLen');
        break;
      case 15: // keyUsage: critical, digitalSignature only
        if (!critical || KU_DIGITAL_SIGNATURE.compare(der, v, next.end) !== 0) fail('keyUsage must be critical digitalSignature only');
        break;
      case 37: // extKeyUsage: clientAuth only
        if (critical || EKU_CLIENT_AUTH_ONLY.compare(der, v, next.end) !== 0) fail('extKeyUsage must be clientAuth only, non-critical');
        break;
      case 14: {
        // subjectKeyIdentifier: SHA-1 of the certificate's own subjectPublicKey bits (RFC 5280 §4.2.1.2 method 1)
        const expected = sha1(der.subarray(keyBits.valueStart + 1, keyBits.end));
        if (critical || vLen !== 22 || der[v] !== TAG_OCTET_STRING || der[v + 1] !== 20 || expected.compare(der, v + 2, next.end) !== 0) {
          fail('subjectKeyIdentifier is not SHA-1 of the subject key (RFC 5280 §4.2.1.2)');
        }
        break;
      }
      case 35: {
        const k = issuer.keyIdentifier;
        if (critical || vLen !== 4 + k.length || der[v] !== TAG_SEQUENCE || der[v + 1] !== 2 + k.length || der[v + 2] !== 0x80 || der[v + 3] !== k.length || k.compare(der, v + 4, next.end) !== 0) {
          fail('authorityKeyIdentifier is not the issuing CA key id');
        }
        break;
      }
      case 17: {
        const uri = deviceUri(spec.deviceId);
        const n = uri.length;
        if (critical || vLen !== 4 + n || der[v] !== TAG_SEQUENCE || der[v + 1] !== 2 + n || der[v + 2] !== 0x86 || der[v + 3] !== n || der.toString('latin1', v + 4, next.end) !== uri) {
          fail('subjectAltName must be exactly the device URI');
        }
        break;
      }
      default:
        fail(`unexpected extension 2.5.29.${arc}`);
    }
  }
  if (count !== 6) fail(`${count} extensions, expected exactly 6`);
}

/** Whether the whole TLV `t` in `der` equals `expected`, compared in place. */
function sameBytes(der: Buffer, t: Tlv, expected: Buffer): boolean {
  return t.end - t.start === expected.length && expected.compare(der, t.start, t.end) === 0;
}

/** Whether the contents of TLV `t` equal `expected`. */
function sameContent(der: Buffer, t: Tlv, expected: Buffer): boolean {
  return t.end - t.valueStart === expected.length && expected.compare(der, t.valueStart, t.end) === 0;
}

function checkTime(der: Buffer, t: Tlv, expected: Date, what: string, fail: (w: string) => never): void {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  const wantTag = expected.getUTCFullYear() >= 2050 ? TAG_GENERALIZED_TIME : TAG_UTC_TIME;
  if (t.tag !== wantTag) fail(`${what} uses the wrong time type for its year`);
  if (decodeTime(der, t).getTime() !== expected.getTime()) fail(`${what} differs from the spec`);
}

/** The signature value must be a DER Ecdsa-Sig-Value with positive r and s (RFC 3279 §2.2.3). */
function checkEcdsaSignatureValue(der: Buffer, sig: Tlv, fail: (w: string) => never): void {
  if (der[sig.valueStart] !== 0) fail('signature BIT STRING has unused bits');
  const seq = readTlv(der, sig.valueStart + 1, sig.end);
  if (seq.tag !== TAG_SEQUENCE || seq.end !== sig.end) fail('signature is not an Ecdsa-Sig-Value');
  const [r, s, extra] = readChildren(der, seq, 3);
  if (!r || !s || extra || r.tag !== TAG_INTEGER || s.tag !== TAG_INTEGER) fail('signature is not an Ecdsa-Sig-Value');
  for (const v of [r!, s!]) {
    if (v.end - v.valueStart > 33 || !isPositiveMinimalInteger(der.subarray(v.valueStart, v.end))) fail('signature r or s out of range');
  }
}

// ─────────────── server certificate names ───────────────

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function splitServerNames(names: readonly string[]): { dns: string[]; ips: Buffer[] } {
  const dns = new Set<string>(['localhost']);
  const ipText = new Set<string>();
  const ips: Buffer[] = [];
  const addIp = (bytes: Buffer): void => {
    const key = bytes.toString('hex');
    if (!ipText.has(key)) {
      ipText.add(key);
      ips.push(bytes);
    }
  };
  addIp(Buffer.from([127, 0, 0, 1]));
  addIp(parseIpv6('::1')!);
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    const v4 = parseIpv4(name);
    const v6 = v4 ? undefined : parseIpv6(name);
    if (v4) addIp(v4);
    else if (v6) addIp(v6);
    else if (name.length <= 253 && name.split('.').every((l) => DNS_LABEL.test(l))) dns.add(name);
    else throw new Error(`server name ${JSON.stringify(raw)} is neither a DNS name nor an IP address`);
  }
  return { dns: [...dns], ips };
}

function parseIpv4(s: string): Buffer | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? Buffer.from(bytes) : undefined;
}

function parseIpv6(s: string): Buffer | undefined {
  if (!/^[0-9a-f:]+$/.test(s) || !s.includes(':')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined): number[] | undefined => {
    if (!part) return [];
    const groups = part.split(':');
    if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
    return groups.map((g) => parseInt(g, 16));
  };
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
