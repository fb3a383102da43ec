import * as nodeCrypto from 'node:crypto';
import { constants, createHash, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { EnrollError } from '../errors.js';
import {
  assertWellFormed,
  decodeOid,
  DerError,
  readChildren,
  readTlv,
  TAG_BIT_STRING,
  TAG_BMP_STRING,
  TAG_BOOLEAN,
  TAG_INTEGER,
  TAG_NULL,
  TAG_OCTET_STRING,
  TAG_OID,
  TAG_PRINTABLE_STRING,
  TAG_SEQUENCE,
  TAG_SET,
  TAG_TELETEX_STRING,
  TAG_UTF8_STRING,
  TAG_IA5_STRING,
} from './der.js';
import type { Tlv } from './der.js';
import { checkSpki, importPublicKey, importPublicKeyFast } from './key-policy.js';
import type { KeyInfo } from './key-policy.js';
import { oidHex, oidNameFromHex } from './oids.js';
import type { OidName } from './oids.js';
import type { ParsedCsr } from './types.js';

// PKCS#10 (RFC 2986) parsing for untrusted input. Bounded in size, depth and element count, strict DER throughout
// (X.690 §10/§11), with a signature-algorithm allow-list and the key policy (key-policy.ts). Requested names are
// extracted for the identity check only; requested extensions are otherwise ignored.

/** Largest CSR accepted, as DER or as text (the HTTP body cap is the same 16 KiB). */
export const MAX_CSR_BYTES = 16 * 1024;
/** A real CSR nests ≤ 8 levels (RSASSA-PSS params are the deepest); 16 leaves room and bounds the walk. */
export const MAX_CSR_DEPTH = 16;
const MAX_CSR_NODES = 2048;
const MAX_ATTRIBUTES = 32;
const MAX_EXTENSIONS = 32;
const MAX_RDNS = 32;
const MAX_GENERAL_NAMES = 32;

export type CsrHash = 'sha256' | 'sha384' | 'sha512';

/** An allowed signature algorithm, resolved from the CSR's AlgorithmIdentifier. */
export interface CsrSignatureAlgorithm {
  name: string;
  hash: CsrHash;
  keyKind: 'ec' | 'rsa';
  /** RSASSA-PSS salt length (RFC 4055 §3.1), when the algorithm is PSS. */
  pssSaltLength?: number;
  /** The PSS hash's output length in octets (hLen, RFC 8017 §9.1), when the algorithm is PSS. */
  pssHashBytes?: number;
}

const badCsr = (detail: string, cause?: unknown): EnrollError =>
  new EnrollError('bad-csr', detail, cause === undefined ? {} : { cause });
const badAlg = (detail: string): EnrollError => new EnrollError('bad-signature-algorithm', detail);

const ALLOWED_ALGORITHMS_TEXT =
  'allowed: ecdsa-with-SHA256, ecdsa-with-SHA384, sha256/384/512WithRSAEncryption, RSASSA-PSS with SHA-256/384/512';

const SIMPLE_ALGORITHMS = new Map<string, CsrSignatureAlgorithm & { params: 'absent' | 'null-or-absent' }>([
  // RFC 5758 §3.2: ECDSA parameters MUST be absent.
  [oidHex('ecdsaWithSha256'), { name: 'ecdsa-with-SHA256', hash: 'sha256', keyKind: 'ec', params: 'absent' }],
  [oidHex('ecdsaWithSha384'), { name: 'ecdsa-with-SHA384', hash: 'sha384', keyKind: 'ec', params: 'absent' }],
  // RFC 4055 §5: parameters MUST be NULL, and implementations MUST accept them absent.
  [oidHex('sha256WithRsa'), { name: 'sha256WithRSAEncryption', hash: 'sha256', keyKind: 'rsa', params: 'null-or-absent' }],
  [oidHex('sha384WithRsa'), { name: 'sha384WithRSAEncryption', hash: 'sha384', keyKind: 'rsa', params: 'null-or-absent' }],
  [oidHex('sha512WithRsa'), { name: 'sha512WithRSAEncryption', hash: 'sha512', keyKind: 'rsa', params: 'null-or-absent' }],
]);

const REFUSED_ALGORITHMS: Partial<Record<OidName, string>> = {
  md2WithRsa: 'md2WithRSAEncryption',
  md5WithRsa: 'md5WithRSAEncryption',
  sha1WithRsa: 'sha1WithRSAEncryption',
  sha224WithRsa: 'sha224WithRSAEncryption',
  ecdsaWithSha1: 'ecdsa-with-SHA1',
  ecdsaWithSha224: 'ecdsa-with-SHA224',
  ecdsaWithSha512: 'ecdsa-with-SHA512',
  dsaWithSha1: 'dsa-with-SHA1',
  dsaWithSha224: 'dsa-with-SHA224',
  dsaWithSha256: 'dsa-with-SHA256',
  ed25519: 'Ed25519',
  ed448: 'Ed448',
};

const HASH_BY_OID_HEX = new Map<string, { hash: CsrHash; label: string; bytes: number }>([
  [oidHex('sha256'), { hash: 'sha256', label: 'SHA-256', bytes: 32 }],
  [oidHex('sha384'), { hash: 'sha384', label: 'SHA-384', bytes: 48 }],
  [oidHex('sha512'), { hash: 'sha512', label: 'SHA-512', bytes: 64 }],
]);

const OID_HEX_EXTENSION_REQUEST = oidHex('extensionRequest');
const OID_HEX_SAN = oidHex('subjectAltName');
const OID_HEX_CN = oidHex('commonName');
const OID_HEX_RSASSA_PSS = oidHex('rsassaPss');
const OID_HEX_MGF1 = oidHex('mgf1');

// ───────────────────────────── input decoding ─────────────────────────────

const PEM_LABELS = ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'] as const;

/** base64 alphabet value of each char code (RFC 4648 §4), −1 if not in the alphabet. */
const B64 = new Int8Array(128).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => (B64[c.charCodeAt(0)] = i));
const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Turns PEM ("CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST", RFC 7468 §7), raw DER, or base64 DER
 * (RFC 8951 transfer encoding, whitespace allowed) into DER. Anything else is bad-csr.
 */
export function decodeCsrInput(input: string | Uint8Array): Buffer {
  if (typeof input === 'string') {
    if (input.length > MAX_CSR_BYTES) throw badCsr(`CSR larger than ${MAX_CSR_BYTES} bytes`);
    return decodeCsrText(input);
  }
  if (!(input instanceof Uint8Array)) throw badCsr('CSR must be a string or bytes');
  if (input.length > MAX_CSR_BYTES) throw badCsr(`CSR larger than ${MAX_CSR_BYTES} bytes`);
  if (input.length === 0) throw badCsr('empty CSR');
  // DER starts with the SEQUENCE tag 0x30. Text that starts with '0' (also 0x30) cannot be a CSR anyway: PEM
  // starts with '-' or whitespace, and base64 of a DER SEQUENCE starts with 'M'.
  if (input[0] === TAG_SEQUENCE) return Buffer.from(input);
  return decodeCsrText(Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1'));
}

function decodeCsrText(text: string): Buffer {
  const begin = text.indexOf('-----BEGIN');
  if (begin === -1) return strictBase64(text, 0, text.length, 'base64 CSR');
  const pemError = (): EnrollError => badCsr('PEM input must be exactly one "CERTIFICATE REQUEST" block (RFC 7468 §7)');
  for (let i = 0; i < begin; i++) if (!isSpace(text.charCodeAt(i))) throw pemError();
  const label = PEM_LABELS.find((l) => text.startsWith(`-----BEGIN ${l}-----`, begin));
  if (!label) throw pemError();
  const bodyStart = begin + label.length + 16; // "-----BEGIN " (11) + label + "-----" (5)
  const endMarker = `-----END ${label}-----`;
  const bodyEnd = text.indexOf('-----', bodyStart);
  if (bodyEnd === -1 || !text.startsWith(endMarker, bodyEnd)) throw pemError();
  for (let i = bodyEnd + endMarker.length; i < text.length; i++) if (!isSpace(text.charCodeAt(i))) throw pemError();
  return strictBase64(text, bodyStart, bodyEnd, 'PEM body');
}

/**
 * Strict RFC 4648 §4 base64 of text[start, end), whitespace allowed anywhere (RFC 7468 §3, RFC 8951): alphabet
 * only, padding only at the end and making the length a multiple of 4, and zero pad bits (canonical).
 * One pass over the characters, then Node's decoder (which skips the whitespace).
 */
function strictBase64(text: string, start: number, end: number, what: string): Buffer {
  let count = 0;
  let pad = 0;
  let last = -1;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) continue;
    if (c === 0x3d) {
      pad++;
      continue;
    }
    const v = c < 128 ? B64[c]! : -1;
    if (v < 0 || pad > 0) throw badCsr(`${what} is not valid base64 (RFC 4648 §4)`);
    last = v;
    count++;
  }
  if (count === 0) throw badCsr(`${what} is empty`);
  if (pad > 2 || (count + pad) % 4 !== 0) throw badCsr(`${what} is not valid base64 (RFC 4648 §4)`);
  // The bits of the last character that fall beyond the data must be zero (RFC 4648 §3.5: canonical encoding).
  if ((pad === 1 && (last & 0x03) !== 0) || (pad === 2 && (last & 0x0f) !== 0)) throw badCsr(`${what} is not canonical base64`);
  const der = Buffer.from(start === 0 && end === text.length ? text : text.slice(start, end), 'base64');
  if (der.length !== ((count + pad) / 4) * 3 - pad) throw badCsr(`${what} is not valid base64 (RFC 4648 §4)`);
  if (der.length > MAX_CSR_BYTES) throw badCsr(`CSR larger than ${MAX_CSR_BYTES} bytes`);
  return der;
}

// ───────────────────────────── structure ─────────────────────────────

/** Everything parseCsr learns before importing the key and verifying the signature. */
export interface DecodedCsr {
  der: Buffer;
  /** CertificationRequestInfo bytes: what the signature covers. */
  certificationRequestInfo: Buffer;
  signatureAlgorithm: CsrSignatureAlgorithm;
  signature: Buffer;
  key: KeyInfo;
  spkiDer: Buffer;
  requested: ParsedCsr['requested'];
}

/**
 * Decodes and checks a CSR up to (not including) the signature: encoding, DER, structure, algorithm allow-list,
 * key policy and requested names. Throws EnrollError bad-csr / bad-signature-algorithm / bad-key.
 */
export function decodeCsr(input: string | Uint8Array): DecodedCsr {
  const der = decodeCsrInput(input);
  try {
    assertWellFormed(der, 0, der.length, { maxDepth: MAX_CSR_DEPTH, maxNodes: MAX_CSR_NODES });
  } catch (error) {
    if (error instanceof DerError) throw badCsr(`CSR is not valid DER: ${error.message}`, error);
    throw error;
  }
  try {
    return decodeStructure(der);
  } catch (error) {
    if (error instanceof DerError) throw badCsr(`malformed CSR: ${error.message}`, error);
    throw error;
  }
}

function decodeStructure(der: Buffer): DecodedCsr {
  const outer = readTlv(der, 0, der.length);
  if (outer.tag !== TAG_SEQUENCE) throw new DerError('CertificationRequest must be a SEQUENCE');
  const [cri, sigAlgTlv, sigTlv, extra] = readChildren(der, outer, 4);
  if (!cri || cri.tag !== TAG_SEQUENCE || !sigAlgTlv || sigAlgTlv.tag !== TAG_SEQUENCE || !sigTlv || sigTlv.tag !== TAG_BIT_STRING || extra) {
    throw new DerError('CertificationRequest must be SEQUENCE { CertificationRequestInfo, AlgorithmIdentifier, BIT STRING } (RFC 2986 §4.2)');
  }
  const [version, subject, spki, attributes, more] = readChildren(der, cri, 5);
  if (!version || version.tag !== TAG_INTEGER || version.end - version.valueStart !== 1 || der[version.valueStart] !== 0) {
    throw new DerError('CertificationRequestInfo version must be 0 (RFC 2986 §4.1)');
  }
  if (!subject || subject.tag !== TAG_SEQUENCE) throw new DerError('subject must be a Name');
  if (!spki || spki.tag !== TAG_SEQUENCE) throw new DerError('subjectPKInfo must be a SEQUENCE');
  // RFC 2986 §4.1: attributes [0] IMPLICIT SET OF Attribute. Some encoders omit an empty set; that is harmless.
  if ((attributes && attributes.tag !== 0xa0) || more) throw new DerError('unexpected element after subjectPKInfo');

  const signatureAlgorithm = resolveSignatureAlgorithm(der, sigAlgTlv);
  if (der[sigTlv.valueStart] !== 0) throw new DerError('signature BIT STRING has unused bits');

  const key = checkSpki(der, spki);
  if (key.kind !== signatureAlgorithm.keyKind) {
    throw badAlg(`signature algorithm ${signatureAlgorithm.name} does not match the ${key.description} key`);
  }
  if (key.kind === 'rsa' && signatureAlgorithm.pssSaltLength !== undefined) checkPssSaltLength(signatureAlgorithm, key.bits);

  const requested: ParsedCsr['requested'] = {
    commonNames: [],
    otherSubjectAttributes: 0,
    uris: [],
    dnsNames: [],
    ipAddresses: [],
    emails: [],
    otherNames: 0,
  };
  readSubject(der, subject, requested);
  if (attributes) readAttributes(der, attributes, requested);

  return {
    der,
    certificationRequestInfo: der.subarray(cri.start, cri.end),
    signatureAlgorithm,
    signature: der.subarray(sigTlv.valueStart + 1, sigTlv.end),
    key,
    spkiDer: Buffer.from(der.subarray(spki.start, spki.end)),
    requested,
  };
}

function resolveSignatureAlgorithm(der: Buffer, algId: Tlv): CsrSignatureAlgorithm {
  const [oid, params, extra] = readChildren(der, algId, 3);
  if (!oid || oid.tag !== TAG_OID || extra) throw new DerError('malformed signature AlgorithmIdentifier');
  const hex = der.toString('hex', oid.valueStart, oid.end);
  const simple = SIMPLE_ALGORITHMS.get(hex);
  if (simple) {
    const ok = simple.params === 'absent' ? !params : !params || params.tag === TAG_NULL;
    if (!ok) {
      throw badAlg(
        simple.params === 'absent'
          ? `${simple.name} parameters must be absent (RFC 5758 §3.2)`
          : `${simple.name} parameters must be NULL or absent (RFC 4055 §5)`,
      );
    }
    return { name: simple.name, hash: simple.hash, keyKind: simple.keyKind };
  }
  if (hex === OID_HEX_RSASSA_PSS) return resolvePss(der, params);
  const known = oidNameFromHex(hex);
  const label = (known && REFUSED_ALGORITHMS[known]) ?? decodeOid(der, oid.valueStart, oid.end);
  throw badAlg(`signature algorithm ${label} is not allowed; ${ALLOWED_ALGORITHMS_TEXT}`);
}

/** RFC 4055 §3.1 RSASSA-PSS-params. The defaults are SHA-1, so absent parameters are refused. */
function resolvePss(der: Buffer, params: Tlv | undefined): CsrSignatureAlgorithm {
  if (!params || params.tag !== TAG_SEQUENCE) throw badAlg('RSASSA-PSS without parameters means SHA-1, which is not allowed');
  let hash: { hash: CsrHash; label: string; bytes: number } | undefined;
  let mgfHash: string | undefined;
  let saltLength = 20;
  let lastTag = 0;
  for (const field of readChildren(der, params, 4)) {
    if (field.tag <= lastTag || field.tag < 0xa0 || field.tag > 0xa3) throw new DerError('malformed RSASSA-PSS parameters');
    lastTag = field.tag;
    const [inner, extra] = readChildren(der, field, 2);
    if (!inner || extra) throw new DerError('malformed RSASSA-PSS parameter');
    if (field.tag === 0xa0) {
      hash = readHashAlgorithm(der, inner);
    } else if (field.tag === 0xa1) {
      const [mgfOid, mgfParams, more] = inner.tag === TAG_SEQUENCE ? readChildren(der, inner, 3) : [];
      if (!mgfOid || mgfOid.tag !== TAG_OID || der.toString('hex', mgfOid.valueStart, mgfOid.end) !== OID_HEX_MGF1 || !mgfParams || more) {
        throw badAlg('RSASSA-PSS mask generation must be MGF1');
      }
      mgfHash = readHashAlgorithm(der, mgfParams).hash;
    } else if (field.tag === 0xa2) {
      if (inner.tag !== TAG_INTEGER || inner.end - inner.valueStart > 2) throw badAlg('RSASSA-PSS salt length out of range');
      saltLength = der.readUIntBE(inner.valueStart, inner.end - inner.valueStart);
    } else {
      if (inner.tag !== TAG_INTEGER || inner.end - inner.valueStart !== 1 || der[inner.valueStart] !== 1) {
        throw badAlg('RSASSA-PSS trailerField must be 1 (RFC 4055 §3.1)');
      }
    }
  }
  if (!hash) throw badAlg('RSASSA-PSS with the default hash SHA-1 is not allowed');
  if (mgfHash !== hash.hash) throw badAlg(`RSASSA-PSS MGF1 must use the signature hash ${hash.label}`);
  return { name: `RSASSA-PSS with ${hash.label}`, hash: hash.hash, keyKind: 'rsa', pssSaltLength: saltLength, pssHashBytes: hash.bytes };
}

/**
 * Any salt length RFC 8017 §9.1.1 allows for the key: 0 up to emLen − hLen − 2 octets, emLen = ⌈(modBits − 1) / 8⌉.
 * The salt is chosen by the signer and only makes the signature randomised; no length in that range weakens the
 * proof of possession. It covers RFC 4055's recommended hLen and OpenSSL 3.0's default, the maximum (222 octets for
 * RSA-2048 with SHA-256).
 */
function checkPssSaltLength(alg: CsrSignatureAlgorithm, modulusBits: number): void {
  const maxSalt = Math.ceil((modulusBits - 1) / 8) - (alg.pssHashBytes ?? 0) - 2;
  if (alg.pssSaltLength! > maxSalt) {
    throw badAlg(`RSASSA-PSS salt length ${alg.pssSaltLength} is longer than an RSA ${modulusBits} key allows with ${alg.name.replace('RSASSA-PSS with ', '')} (at most ${maxSalt}, RFC 8017 §9.1.1)`);
  }
}

function readHashAlgorithm(der: Buffer, algId: Tlv): { hash: CsrHash; label: string; bytes: number } {
  if (algId.tag !== TAG_SEQUENCE) throw new DerError('hash AlgorithmIdentifier must be a SEQUENCE');
  const [oid, params, extra] = readChildren(der, algId, 3);
  if (!oid || oid.tag !== TAG_OID || extra || (params && params.tag !== TAG_NULL)) throw new DerError('malformed hash AlgorithmIdentifier');
  const found = HASH_BY_OID_HEX.get(der.toString('hex', oid.valueStart, oid.end));
  if (!found) throw badAlg(`RSASSA-PSS hash ${decodeOid(der, oid.valueStart, oid.end)} is not allowed; allowed: SHA-256, SHA-384, SHA-512`);
  return found;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf16be = new TextDecoder('utf-16be', { fatal: true });

/** Decodes a DirectoryString (RFC 5280 §4.1.2.4) for comparison; never copied into a certificate. */
function decodeDirectoryString(der: Buffer, value: Tlv): string {
  const bytes = der.subarray(value.valueStart, value.end);
  switch (value.tag) {
    case TAG_UTF8_STRING:
      try {
        return utf8.decode(bytes);
      } catch {
        throw new DerError('invalid UTF-8 in UTF8String');
      }
    case TAG_PRINTABLE_STRING:
    case TAG_IA5_STRING:
    case 0x1a: // VisibleString
      return asciiString(bytes);
    case TAG_TELETEX_STRING:
      return bytes.toString('latin1');
    case TAG_BMP_STRING:
      if (bytes.length % 2) throw new DerError('odd-length BMPString');
      try {
        return utf16be.decode(bytes);
      } catch {
        throw new DerError('invalid BMPString');
      }
    default:
      throw new DerError(`unsupported string type 0x${value.tag.toString(16)} in subject`);
  }
}

function asciiString(bytes: Buffer): string {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) throw new DerError('non-ASCII byte in an ASCII string type');
  return bytes.toString('latin1');
}

function readSubject(der: Buffer, subject: Tlv, requested: ParsedCsr['requested']): void {
  for (const rdn of readChildren(der, subject, MAX_RDNS)) {
    if (rdn.tag !== TAG_SET) throw new DerError('RelativeDistinguishedName must be a SET');
    const atvs = readChildren(der, rdn, MAX_RDNS);
    if (atvs.length === 0) throw new DerError('empty RelativeDistinguishedName (RFC 5280 §4.1.2.4)');
    for (const atv of atvs) {
      if (atv.tag !== TAG_SEQUENCE) throw new DerError('AttributeTypeAndValue must be a SEQUENCE');
      const [type, value, extra] = readChildren(der, atv, 3);
      if (!type || type.tag !== TAG_OID || !value || extra) throw new DerError('malformed AttributeTypeAndValue');
      if (der.toString('hex', type.valueStart, type.end) === OID_HEX_CN) {
        requested.commonNames.push(decodeDirectoryString(der, value));
      } else {
        requested.otherSubjectAttributes++;
      }
    }
  }
}

function readAttributes(der: Buffer, attributes: Tlv, requested: ParsedCsr['requested']): void {
  let sawExtensionRequest = false;
  for (const attribute of readChildren(der, attributes, MAX_ATTRIBUTES)) {
    if (attribute.tag !== TAG_SEQUENCE) throw new DerError('Attribute must be a SEQUENCE');
    const [type, values, extra] = readChildren(der, attribute, 3);
    if (!type || type.tag !== TAG_OID || !values || values.tag !== TAG_SET || extra) throw new DerError('malformed Attribute');
    if (der.toString('hex', type.valueStart, type.end) !== OID_HEX_EXTENSION_REQUEST) continue;
    if (sawExtensionRequest) throw new DerError('more than one extensionRequest attribute');
    sawExtensionRequest = true;
    const [extensions, more] = readChildren(der, values, 2);
    if (!extensions || extensions.tag !== TAG_SEQUENCE || more) throw new DerError('extensionRequest must hold exactly one Extensions (RFC 2985 §5.4.2)');
    readExtensionRequest(der, extensions, requested);
  }
}

function readExtensionRequest(der: Buffer, extensions: Tlv, requested: ParsedCsr['requested']): void {
  const seen = new Set<string>();
  for (const extension of readChildren(der, extensions, MAX_EXTENSIONS)) {
    if (extension.tag !== TAG_SEQUENCE) throw new DerError('Extension must be a SEQUENCE');
    const [oid, second, third, extra] = readChildren(der, extension, 4);
    if (!oid || oid.tag !== TAG_OID || !second || extra) throw new DerError('malformed Extension');
    let value = second;
    if (second.tag === TAG_BOOLEAN) {
      if (!third) throw new DerError('Extension without a value');
      value = third;
    } else if (third) {
      throw new DerError('malformed Extension');
    }
    if (value.tag !== TAG_OCTET_STRING) throw new DerError('extnValue must be an OCTET STRING');
    const hex = der.toString('hex', oid.valueStart, oid.end);
    // RFC 5280 §4.2: a certificate MUST NOT include more than one instance of an extension (Boulder
    // TestDuplicateExtensionRejection); a request that does is ambiguous, so refuse it.
    if (seen.has(hex)) throw badCsr(`duplicate extension ${decodeOid(der, oid.valueStart, oid.end)} in extensionRequest`);
    seen.add(hex);
    if (hex === OID_HEX_SAN) readSubjectAltName(der, value, requested);
    // Every other requested extension is ignored: the profile is fixed (docs/architecture.md).
  }
}

function readSubjectAltName(der: Buffer, value: Tlv, requested: ParsedCsr['requested']): void {
  assertWellFormed(der, value.valueStart, value.end, { maxDepth: 8, maxNodes: 256 });
  const names = readTlv(der, value.valueStart, value.end);
  if (names.tag !== TAG_SEQUENCE) throw new DerError('GeneralNames must be a SEQUENCE');
  const list = readChildren(der, names, MAX_GENERAL_NAMES);
  if (list.length === 0) throw new DerError('empty subjectAltName (RFC 5280 §4.2.1.6)');
  for (const name of list) {
    const bytes = der.subarray(name.valueStart, name.end);
    switch (name.tag) {
      case 0x81:
        requested.emails.push(asciiString(bytes));
        break;
      case 0x82:
        requested.dnsNames.push(asciiString(bytes));
        break;
      case 0x86:
        requested.uris.push(asciiString(bytes));
        break;
      case 0x87:
        requested.ipAddresses.push(formatIp(bytes));
        break;
      case 0xa0: // otherName
      case 0xa3: // x400Address
      case 0xa4: // directoryName
      case 0xa5: // ediPartyName
      case 0x88: // registeredID
        requested.otherNames++;
        break;
      default:
        throw new DerError(`unknown GeneralName tag 0x${name.tag.toString(16)}`);
    }
  }
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  throw new DerError('iPAddress must be 4 or 16 octets');
}

// ───────────────────────────── signature and result ─────────────────────────────

const sha256 =
  // crypto.hash (Node ≥ 20.12) is the cheapest one-shot digest; a named import would fail to link on 20.11.
  typeof nodeCrypto.hash === 'function'
    ? (data: Uint8Array): Buffer => nodeCrypto.hash('sha256', data, 'buffer')
    : (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

/** Verifies the CSR's signature over the CertificationRequestInfo with OpenSSL (never a JS verifier). */
export function verifyCsrSignature(decoded: DecodedCsr, publicKey: KeyObject): void {
  const { signatureAlgorithm: alg, certificationRequestInfo, signature } = decoded;
  let ok: boolean;
  try {
    if (alg.keyKind === 'ec') {
      // dsaEncoding defaults to 'der' (Ecdsa-Sig-Value, RFC 3279 §2.2.3); passing the KeyObject alone skips an options parse.
      ok = cryptoVerify(alg.hash, certificationRequestInfo, publicKey, signature);
    } else if (alg.pssSaltLength !== undefined) {
      ok = cryptoVerify(
        alg.hash,
        certificationRequestInfo,
        { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.pssSaltLength },
        signature,
      );
    } else {
      ok = cryptoVerify(alg.hash, certificationRequestInfo, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
  } catch (cause) {
    // A malformed signature can make OpenSSL throw rather than return false; either way it is the client's fault.
    throw badCsr('CSR signature does not verify', cause);
  }
  if (!ok) throw badCsr('CSR signature does not verify');
}

function toParsed(decoded: DecodedCsr, publicKey: KeyObject): ParsedCsr {
  verifyCsrSignature(decoded, publicKey);
  return {
    der: decoded.der,
    sha256: sha256(decoded.der),
    publicKey,
    spkiDer: decoded.spkiDer,
    publicKeySha256: sha256(decoded.spkiDer),
    keyDescription: decoded.key.description,
    requested: decoded.requested,
  };
}

/**
 * Parses and checks a CSR: encoding (PEM, DER or base64 DER), strict bounded DER, signature-algorithm allow-list,
 * key policy, signature. Throws EnrollError with kind bad-csr, bad-signature-algorithm or bad-key; never anything
 * else for malformed input. Synchronous (JWK key import).
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const decoded = decodeCsr(input);
  return toParsed(decoded, importPublicKey(decoded.key));
}

/**
 * Same checks and result as parseCsr, but imports EC keys through WebCrypto's raw import (see importPublicKeyFast).
 * All the work is synchronous; only the key arrives through a promise. In the issuance bench the two paths are
 * within noise of each other (raw import is ~5 µs cheaper in isolation, the promise gives most of it back).
 */
export function parseCsrAsync(input: string | Uint8Array): Promise<ParsedCsr> {
  let decoded: DecodedCsr;
  try {
    decoded = decodeCsr(input);
  } catch (error) {
    return Promise.reject(error);
  }
  return importPublicKeyFast(decoded.key).then((key) => toParsed(decoded, key));
}
