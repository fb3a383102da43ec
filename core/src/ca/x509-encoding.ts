import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { EnrollError } from '../errors.js';
import { derBoolean, derImplicit, derOctetString, derOid, derSequence, headerLength, TAG_BIT_STRING, TAG_SEQUENCE, writeHeader } from './der.js';
import { OID } from './oids.js';

// DER pieces shared by every certificate and CRL this CA encodes (RFC 5280 §4.1, §4.2.1, §5.1), built once.

/** [0] EXPLICIT Version v3 (RFC 5280 §4.1.2.1). */
export const VERSION_V3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);
/** AlgorithmIdentifier ecdsa-with-SHA256, parameters absent (RFC 5758 §3.2). */
export const ECDSA_SHA256 = derSequence(derOid(OID.ecdsaWithSha256));
export const OID_CN = derOid(OID.commonName);
/** The criticality field of a critical extension; DER omits FALSE (X.690 §11.5). */
const CRITICAL = derBoolean(true);

export const extension = (oid: string, critical: boolean, value: Uint8Array): Buffer =>
  critical ? derSequence(derOid(oid), CRITICAL, derOctetString(value)) : derSequence(derOid(oid), derOctetString(value));

/** basicConstraints CA:FALSE, critical: cA DEFAULT FALSE is omitted in DER, leaving an empty SEQUENCE. */
export const EXT_BASIC_CONSTRAINTS_LEAF = extension(OID.basicConstraints, true, derSequence());
/** keyUsage value digitalSignature only (RFC 5280 §4.2.1.3): bit 0 → one octet 0x80 with 7 unused bits. */
export const KEY_USAGE_DIGITAL_SIGNATURE = Buffer.from([0x03, 0x02, 0x07, 0x80]);
export const EXT_KEY_USAGE_DIGITAL_SIGNATURE = extension(OID.keyUsage, true, KEY_USAGE_DIGITAL_SIGNATURE);

/** authorityKeyIdentifier { keyIdentifier [0] } (RFC 5280 §4.2.1.1), non-critical. */
export const authorityKeyIdentifierExtension = (keyIdentifier: Buffer): Buffer =>
  extension(OID.authorityKeyIdentifier, false, derSequence(derImplicit(0, keyIdentifier)));

const sha1 =
  // crypto.hash (Node ≥ 20.12) is the cheapest one-shot digest; a named import would fail to link on 20.11.
  typeof nodeCrypto.hash === 'function'
    ? (data: Uint8Array): Buffer => nodeCrypto.hash('sha1', data, 'buffer')
    : (data: Uint8Array): Buffer => createHash('sha1').update(data).digest();

/** Key identifier of a public key: SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 §4.2.1.2 method 1). */
export const keyIdentifierOf = (subjectPublicKeyBits: Uint8Array): Buffer => sha1(subjectPublicKeyBits);

export const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

export const internalError = (detail: string, cause?: unknown): EnrollError =>
  new EnrollError('internal', detail, cause === undefined ? {} : { cause });

/** Certificate or CertificateList ::= SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING signature } (RFC 5280 §4.1, §5.1). */
export function assembleSigned(tbs: Buffer, signature: Buffer): Buffer {
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
