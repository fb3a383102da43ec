import { describe, expect, it } from '@jest/globals';
import { createPublicKey, sign } from 'node:crypto';
import { parseCsr, parseCsrAsync } from '@enrolld/core/ca/index.js';
import { derBitString, derInteger, derNull, derOid, derSequence, tlv } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { buildCsr, ecSpki, generateTestKey, randomOddInteger, rejectionOf, rsaKeyOfExactBits, rsaSpki } from '../support/csr-factory.js';
import type { TestKeyKind } from '../support/csr-factory.js';

// CSR-03: exactly the policy set is accepted: EC P-256/P-384, RSA 2048–4096 with e = 65537. Every rejection is
// 'bad-key' with a reason, never a 500 (Node key import errors are mapped).

const P256_P = BigInt('0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff');
const signer = generateTestKey('P-256');

/** A CSR carrying `spkiDer` but signed by another key: the key policy runs before the signature check. */
const csrWithSpki = (spkiDer: Buffer) => buildCsr({ key: signer.privateKey, spkiDer, cn: 'kp' }).der;
const hex32 = (v: bigint) => Buffer.from(v.toString(16).padStart(64, '0'), 'hex');

async function expectBadKeyBothPaths(der: Buffer, detail: RegExp): Promise<void> {
  expect(rejectionOf(() => parseCsr(der))).toEqual({ kind: 'bad-key', detail: expect.stringMatching(detail) });
  const asyncError = await parseCsrAsync(der).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(asyncError).toBeInstanceOf(EnrollError);
  expect((asyncError as EnrollError).kind).toBe('bad-key');
}

describe('CSR-03 key policy: accepted keys', () => {
  it.each<[string, TestKeyKind, string]>([
    ['EC P-256', 'P-256', 'EC P-256'],
    ['EC P-384', 'P-384', 'EC P-384'],
    ['RSA 2048', { rsa: 2048 }, 'RSA 2048'],
    ['RSA 2049 (inside the 2048–4096 range)', { rsa: 2049 }, 'RSA 2049'],
    ['RSA 3072', { rsa: 3072 }, 'RSA 3072'],
    ['RSA 4096', { rsa: 4096 }, 'RSA 4096'],
  ])('%s', async (_name, kind, description) => {
    const key = typeof kind === 'object' && kind.rsa % 8 !== 0 ? rsaKeyOfExactBits(kind.rsa) : generateTestKey(kind);
    const csr = buildCsr({ key: key.privateKey, cn: 'ok' });
    const parsed = parseCsr(csr.der);
    expect(parsed.keyDescription).toBe(description);
    expect(parsed.spkiDer.equals(key.spkiDer)).toBe(true);
    expect(parsed.publicKey.export({ format: 'der', type: 'spki' }).equals(key.spkiDer)).toBe(true);
    expect((await parseCsrAsync(csr.der)).keyDescription).toBe(description);
  });
});

describe('CSR-03 key policy: rejected curves and algorithms', () => {
  it.each<[string, TestKeyKind, RegExp]>([
    ['P-224', 'P-224', /curve P-224 is not allowed/],
    ['P-521', 'P-521', /curve P-521 is not allowed/],
    ['secp256k1', 'secp256k1', /curve secp256k1 is not allowed/],
    ['brainpoolP256r1', 'brainpoolP256r1', /curve brainpoolP256r1 is not allowed/],
  ])('real %s key, self-signed with ecdsa-with-SHA256', async (_name, kind, detail) => {
    const key = generateTestKey(kind);
    await expectBadKeyBothPaths(buildCsr({ key: key.privateKey, cn: 'kp', signatureAlgorithmDer: derSequence(derOid(OID.ecdsaWithSha256)), signer: (c) => sign('sha256', c, key.privateKey) }).der, detail);
  });

  it('Ed25519 public key (under an allowed signature algorithm label)', async () => {
    await expectBadKeyBothPaths(csrWithSpki(generateTestKey('ed25519').spkiDer), /Ed25519 keys are not allowed/);
  });

  it('DSA and X25519 public keys', async () => {
    const x25519 = derSequence(derSequence(derOid(OID.x25519)), Buffer.from([0x03, 0x21, 0x00, ...Buffer.alloc(32, 9)]));
    await expectBadKeyBothPaths(csrWithSpki(x25519), /X25519 keys are not allowed/);
    const dsa = derSequence(derSequence(derOid(OID.dsa), derSequence(derInteger(23n), derInteger(11n), derInteger(2n))), Buffer.from([0x03, 0x04, 0x00, 0x02, 0x01, 0x05]));
    await expectBadKeyBothPaths(csrWithSpki(dsa), /DSA keys are not allowed/);
  });

  it('an unknown key algorithm OID is named', async () => {
    const spki = derSequence(derSequence(derOid('1.2.3.4.99')), Buffer.from([0x03, 0x02, 0x00, 0x01]));
    await expectBadKeyBothPaths(csrWithSpki(spki), /1\.2\.3\.4\.99 keys are not allowed/);
  });
});

describe('CSR-03 key policy: RSA sizes and exponents', () => {
  it.each([
    ['RSA 1024', () => rsaSpki(randomOddInteger(1024), 65537n), /1024 bits is not allowed/],
    ['RSA 2047', () => rsaSpki(randomOddInteger(2047), 65537n), /2047 bits is not allowed/],
    ['RSA 4097', () => rsaSpki(randomOddInteger(4097), 65537n), /4097 bits is not allowed/],
    ['RSA 8192', () => rsaSpki(randomOddInteger(8192), 65537n), /8192 bits is not allowed/],
    ['e = 3 (real key)', () => generateTestKey({ rsa: 2048, publicExponent: 3 }).spkiDer, /exponent must be 65537, got 3$/],
    ['e = 2^32 + 1', () => rsaSpki(randomOddInteger(2048), 2n ** 32n + 1n), /got 4294967297/],
    ['e = 1', () => rsaSpki(randomOddInteger(2048), 1n), /got 1$/],
    ['even modulus', () => rsaSpki(randomOddInteger(2048) - 1n, 65537n), /modulus is even/],
    ['modulus divisible by 3', () => rsaSpki(multipleOf(3n), 65537n), /small prime 3$/],
    ['modulus divisible by 751 (largest prime < 752)', () => rsaSpki(multipleOf(751n), 65537n), /small prime 751$/],
    ['rsaEncryption without NULL parameters (RFC 3279 §2.3.1)', () => rsaSpki(randomOddInteger(2048), 65537n, null), /must be NULL/],
    ['negative modulus', () => derSequence(derSequence(derOid(OID.rsaEncryption), derNull()), derBitString(derSequence(tlv(0x02, Buffer.concat([Buffer.from([0x80]), Buffer.alloc(255, 1)])), derInteger(65537n)))), /negative/],
  ])('rejects %s', async (_name, make, detail) => {
    await expectBadKeyBothPaths(csrWithSpki(make()), detail);
  });
});

describe('CSR-03 key policy: EC points', () => {
  const good = generateTestKey('P-256').spkiDer;
  const point = good.subarray(good.length - 65);
  const x = point.subarray(1, 33);
  const y = point.subarray(33);

  it.each([
    ['off-curve point (one bit of y flipped)', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), x, flip(y)])), /not a valid point on P-256/],
    ['x = p', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), hex32(P256_P), y])), /x coordinate is not less than/],
    ['x = p + 1', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), hex32(P256_P + 1n), y])), /x coordinate is not less than/],
    ['y = 2^256 − 1', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), x, Buffer.alloc(32, 0xff)])), /y coordinate is not less than/],
    ['point at infinity', () => ecSpki(OID.p256, Buffer.from([0])), /infinity/],
    ['(0, 0)', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), Buffer.alloc(64)])), /not a valid point/],
    ['compressed point', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([2 + (y[31]! & 1)]), x])), /compressed/],
    ['P-384-sized point under the P-256 OID', () => ecSpki(OID.p256, Buffer.concat([Buffer.from([4]), Buffer.alloc(96, 1)])), /malformed P-256/],
    ['explicit curve parameters', () => ecSpki(derSequence(derInteger(1n), derSequence(derOid('1.2.840.10045.1.1'), derInteger(P256_P))), point), /explicit EC curve parameters/],
    ['missing curve parameters', () => ecSpki(null, point), /without curve parameters/],
    ['NULL curve parameters', () => ecSpki(derNull(), point), /must name a curve/],
  ])('rejects %s', async (_name, make, detail) => {
    await expectBadKeyBothPaths(csrWithSpki(make()), detail);
  });

  // Our policy relies on OpenSSL's point validation during import; prove it for both import formats we use.
  it("Node's key import rejects an off-curve P-256 point (SPKI, JWK and WebCrypto raw)", async () => {
    const bad = Buffer.concat([Buffer.from([4]), x, flip(y)]);
    expect(() => createPublicKey({ key: ecSpki(OID.p256, bad), format: 'der', type: 'spki' })).toThrow();
    expect(() =>
      createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: x.toString('base64url'), y: flip(y).toString('base64url') }, format: 'jwk' }),
    ).toThrow();
    await expect(globalThis.crypto.subtle.importKey('raw', bad, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify'])).rejects.toThrow();
    // And the genuine point imports fine through each path.
    expect(createPublicKey({ key: good, format: 'der', type: 'spki' }).asymmetricKeyType).toBe('ec');
  });
});

function flip(b: Buffer): Buffer {
  const c = Buffer.from(b);
  c[c.length - 1]! ^= 1;
  return c;
}

/** A 2048-bit odd multiple of p with no smaller prime factor below 752, so the reported factor must be p. */
function multipleOf(p: bigint): bigint {
  const smaller: bigint[] = [];
  for (let k = 2n; k < p; k++) if (smaller.every((q) => k % q !== 0n)) smaller.push(k);
  for (;;) {
    const m = randomOddInteger(2048 - p.toString(2).length + 1);
    const n = m * p;
    if (n.toString(2).length === 2048 && smaller.every((q) => m % q !== 0n)) return n;
  }
}
