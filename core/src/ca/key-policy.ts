import { createPublicKey, KeyObject } from 'node:crypto';
import type { KeyObject as KeyObjectType } from 'node:crypto';
import { EnrollError } from '../errors.js';
import {
  checkIntegerContent,
  decodeOid,
  DerError,
  expectTlv,
  readChildren,
  readTlv,
  TAG_BIT_STRING,
  TAG_INTEGER,
  TAG_NULL,
  TAG_OID,
  TAG_SEQUENCE,
} from './der.js';
import type { Tlv } from './der.js';
import { oidHex, oidNameFromHex } from './oids.js';
import type { OidName } from './oids.js';

// Key policy (docs/architecture.md; after Boulder goodkey): EC P-256/P-384 on a named curve with a valid
// uncompressed point, or RSA 2048–4096 with e = 65537, odd modulus and no prime factor < 752.

export type EcCurve = 'P-256' | 'P-384';

export type KeyInfo =
  | {
      kind: 'ec';
      curve: EcCurve;
      /** Uncompressed point 04||X||Y. */
      point: Buffer;
      description: string;
    }
  | {
      kind: 'rsa';
      bits: number;
      /** Modulus, unsigned big-endian, no leading zero. */
      n: Buffer;
      /** Exponent, unsigned big-endian. */
      e: Buffer;
      description: string;
    };

export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 4096;
const RSA_EXPONENT = Buffer.from([0x01, 0x00, 0x01]);

// Field primes: a coordinate must be < p (SP 800-56A §5.6.2.3.3 partial validation; Boulder TestECDSAXOutsideField).
const CURVES: Record<EcCurve, { fieldBytes: number; p: Buffer }> = {
  'P-256': {
    fieldBytes: 32,
    p: Buffer.from('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff', 'hex'),
  },
  'P-384': {
    fieldBytes: 48,
    p: Buffer.from(
      'fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff',
      'hex',
    ),
  },
};

const CURVE_BY_OID_HEX = new Map<string, EcCurve>([
  [oidHex('p256'), 'P-256'],
  [oidHex('p384'), 'P-384'],
]);

const REFUSED_CURVE_NAMES: Partial<Record<OidName, string>> = {
  p521: 'P-521',
  p224: 'P-224',
  p192: 'P-192',
  secp256k1: 'secp256k1',
  brainpoolP256r1: 'brainpoolP256r1',
  brainpoolP384r1: 'brainpoolP384r1',
  brainpoolP512r1: 'brainpoolP512r1',
};

const REFUSED_KEY_ALGORITHMS: Partial<Record<OidName, string>> = {
  ed25519: 'Ed25519',
  ed448: 'Ed448',
  x25519: 'X25519',
  x448: 'X448',
  dsa: 'DSA',
  rsassaPss: 'RSASSA-PSS-restricted RSA (use rsaEncryption)',
};

const badKey = (detail: string): EnrollError => new EnrollError('bad-key', detail);

/**
 * Applies the key policy to a SubjectPublicKeyInfo TLV inside `buf` (already checked to be well-formed DER).
 * Throws EnrollError('bad-key') with a reason, or DerError for structural problems (the caller maps it to bad-csr).
 */
export function checkSpki(buf: Buffer, spki: Tlv): KeyInfo {
  const [algId, keyBits, extra] = readChildren(buf, spki, 3);
  if (!algId || algId.tag !== TAG_SEQUENCE || !keyBits || keyBits.tag !== TAG_BIT_STRING || extra) {
    throw new DerError('SubjectPublicKeyInfo must be SEQUENCE { AlgorithmIdentifier, BIT STRING }');
  }
  const [algOid, params, more] = readChildren(buf, algId, 3);
  if (!algOid || algOid.tag !== TAG_OID || more) throw new DerError('malformed key AlgorithmIdentifier');
  const algHex = buf.toString('hex', algOid.valueStart, algOid.end);
  const algName = oidNameFromHex(algHex);
  if (buf[keyBits.valueStart] !== 0) throw badKey('subjectPublicKey BIT STRING has unused bits');
  const keyStart = keyBits.valueStart + 1;
  const keyEnd = keyBits.end;

  if (algName === 'ecPublicKey') {
    if (!params) throw badKey('EC key without curve parameters');
    if (params.tag === TAG_SEQUENCE) throw badKey('explicit EC curve parameters are not allowed; use a named curve (RFC 5480 §2.1.1)');
    if (params.tag !== TAG_OID) throw badKey('EC key parameters must name a curve (RFC 5480 §2.1.1)');
    const curveHex = buf.toString('hex', params.valueStart, params.end);
    const curve = CURVE_BY_OID_HEX.get(curveHex);
    if (!curve) {
      const known = oidNameFromHex(curveHex);
      const label = (known && REFUSED_CURVE_NAMES[known]) ?? decodeOid(buf, params.valueStart, params.end);
      throw badKey(`EC curve ${label} is not allowed; allowed: P-256, P-384`);
    }
    return checkEcPoint(curve, buf.subarray(keyStart, keyEnd));
  }
  if (algName === 'rsaEncryption') {
    // RFC 3279 §2.3.1: the parameters field MUST be NULL.
    if (!params || params.tag !== TAG_NULL) throw badKey('rsaEncryption key parameters must be NULL (RFC 3279 §2.3.1)');
    return checkRsaPublicKey(buf, keyStart, keyEnd);
  }
  const refused = algName ? REFUSED_KEY_ALGORITHMS[algName] : undefined;
  const label = refused ?? decodeOid(buf, algOid.valueStart, algOid.end);
  throw badKey(`${label} keys are not allowed; allowed: EC P-256, EC P-384, RSA ${RSA_MIN_BITS}–${RSA_MAX_BITS}`);
}

function checkEcPoint(curve: EcCurve, point: Buffer): KeyInfo {
  const { fieldBytes, p } = CURVES[curve];
  if (point.length === 1 && point[0] === 0x00) throw badKey('EC point at infinity');
  const form = point[0];
  if (form === 0x02 || form === 0x03) {
    throw badKey('compressed EC points are not supported; send the uncompressed form (RFC 5480 §2.2)');
  }
  if (form !== 0x04 || point.length !== 1 + 2 * fieldBytes) throw badKey(`malformed ${curve} public point`);
  // Coordinates must be field elements (< p); OpenSSL checks this too, but we say why.
  if (p.compare(point, 1, 1 + fieldBytes) <= 0) throw badKey(`EC point x coordinate is not less than the ${curve} field prime`);
  if (p.compare(point, 1 + fieldBytes) <= 0) throw badKey(`EC point y coordinate is not less than the ${curve} field prime`);
  return { kind: 'ec', curve, point: Buffer.from(point), description: `EC ${curve}` };
}

function checkRsaPublicKey(buf: Buffer, start: number, end: number): KeyInfo {
  let nTlv: Tlv;
  let eTlv: Tlv;
  try {
    const seq = expectTlv(buf, start, end, TAG_SEQUENCE, 'RSAPublicKey');
    if (seq.end !== end) throw new DerError('trailing bytes after RSAPublicKey');
    nTlv = expectTlv(buf, seq.valueStart, seq.end, TAG_INTEGER, 'RSA modulus');
    eTlv = expectTlv(buf, nTlv.end, seq.end, TAG_INTEGER, 'RSA exponent');
    if (eTlv.end !== seq.end) throw new DerError('trailing data in RSAPublicKey');
    checkIntegerContent(buf, nTlv.valueStart, nTlv.end);
    checkIntegerContent(buf, eTlv.valueStart, eTlv.end);
  } catch (error) {
    if (error instanceof DerError) throw badKey(`malformed RSAPublicKey: ${error.message}`);
    throw error;
  }
  if (buf[nTlv.valueStart]! & 0x80 || buf[eTlv.valueStart]! & 0x80) throw badKey('negative RSA modulus or exponent');
  let nStart = nTlv.valueStart;
  while (nStart < nTlv.end - 1 && buf[nStart] === 0) nStart++;
  const n = Buffer.from(buf.subarray(nStart, nTlv.end));
  const e = Buffer.from(buf.subarray(eTlv.valueStart, eTlv.end));
  const bits = bitLength(n);
  if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
    throw badKey(`RSA modulus of ${bits} bits is not allowed; allowed: ${RSA_MIN_BITS}–${RSA_MAX_BITS} bits`);
  }
  if (!e.equals(RSA_EXPONENT)) throw badKey(`RSA public exponent must be 65537, got ${describeExponent(e)}`);
  if ((n[n.length - 1]! & 1) === 0) throw badKey('RSA modulus is even');
  const factor = smallPrimeFactor(n);
  if (factor !== undefined) throw badKey(`RSA modulus is divisible by the small prime ${factor}`);
  return { kind: 'rsa', bits, n, e, description: `RSA ${bits}` };
}

function describeExponent(e: Buffer): string {
  return e.length <= 8 ? BigInt('0x' + e.toString('hex')).toString() : `a ${e.length * 8}-bit value`;
}

function bitLength(n: Buffer): number {
  if (n.length === 0) return 0;
  return (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
}

// Boulder goodkey: reject moduli with a prime factor below 752. Primes are grouped so each product stays
// below 2^45 and `r * 256 + byte` below 2^53, so the remainders are exact in float arithmetic.
const SMALL_PRIME_GROUPS: Array<{ modulus: number; primes: number[] }> = (() => {
  const primes: number[] = [];
  for (let k = 2; k < 752; k++) if (primes.every((q) => k % q !== 0)) primes.push(k);
  const groups: Array<{ modulus: number; primes: number[] }> = [];
  let current = { modulus: 1, primes: [] as number[] };
  for (const q of primes) {
    if (current.modulus * q >= 2 ** 45) {
      groups.push(current);
      current = { modulus: 1, primes: [] };
    }
    current.modulus *= q;
    current.primes.push(q);
  }
  groups.push(current);
  return groups;
})();

function smallPrimeFactor(n: Buffer): number | undefined {
  for (const { modulus, primes } of SMALL_PRIME_GROUPS) {
    let r = 0;
    for (let i = 0; i < n.length; i++) r = (r * 256 + n[i]!) % modulus;
    for (const q of primes) if (r % q === 0) return q;
  }
  return undefined;
}

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/**
 * Imports a policy-checked key synchronously. JWK is the cheapest synchronous import on Node 20 (P-256, CPU
 * time: JWK ≈ 84 µs vs SPKI ≈ 130 µs; SPKI goes through OpenSSL's slower decoder). OpenSSL rejects off-curve
 * points here.
 */
export function importPublicKey(info: KeyInfo): KeyObjectType {
  try {
    if (info.kind === 'ec') {
      const half = (info.point.length - 1) / 2;
      return createPublicKey({
        key: { kty: 'EC', crv: info.curve, x: b64url(info.point.subarray(1, 1 + half)), y: b64url(info.point.subarray(1 + half)) },
        format: 'jwk',
      });
    }
    return createPublicKey({ key: { kty: 'RSA', n: b64url(info.n), e: b64url(info.e) }, format: 'jwk' });
  } catch (cause) {
    throw importError(info, cause);
  }
}

/**
 * Imports a policy-checked EC key through WebCrypto's raw import (EC_POINT_oct2point, then Node's
 * checkEcKeyData: both reject off-curve points). Measured on Node 20 / OpenSSL 3.0 with fresh keys, import +
 * first verify: raw ≈ 145–155 µs, JWK ≈ 155–195 µs, SPKI ≈ 260 µs (CPU time, noisy shared VM). Both raw and JWK
 * run a full public-key check, which is most of the import cost. WebCrypto only offers raw as a promise.
 */
export async function importPublicKeyFast(info: KeyInfo): Promise<KeyObjectType> {
  if (info.kind !== 'ec') return importPublicKey(info);
  try {
    const key = await globalThis.crypto.subtle.importKey('raw', info.point, { name: 'ECDSA', namedCurve: info.curve }, true, [
      'verify',
    ]);
    return KeyObject.from(key);
  } catch (cause) {
    throw importError(info, cause);
  }
}

function importError(info: KeyInfo, cause: unknown): EnrollError {
  const detail = info.kind === 'ec' ? `EC public key is not a valid point on ${info.curve}` : 'RSA public key could not be imported';
  return new EnrollError('bad-key', detail, { cause, logDetail: cause instanceof Error ? cause.message : String(cause) });
}

/** Reads the BIT STRING contents (after the unused-bits octet) of a SubjectPublicKeyInfo: the input to SKI method 1. */
export function spkiKeyBits(spkiDer: Uint8Array): Uint8Array {
  const spki = readTlv(spkiDer, 0, spkiDer.length);
  if (spki.tag !== TAG_SEQUENCE || spki.end !== spkiDer.length) throw new DerError('SPKI is not one SEQUENCE');
  const algId = expectTlv(spkiDer, spki.valueStart, spki.end, TAG_SEQUENCE, 'SPKI algorithm');
  const bits = expectTlv(spkiDer, algId.end, spki.end, TAG_BIT_STRING, 'SPKI key');
  if (bits.end !== spki.end || bits.end - bits.valueStart < 2 || spkiDer[bits.valueStart] !== 0) {
    throw new DerError('malformed SPKI key bits');
  }
  return spkiDer.subarray(bits.valueStart + 1, bits.end);
}
