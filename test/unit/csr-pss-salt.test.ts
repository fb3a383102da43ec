// RSASSA-PSS salt lengths: every length RFC 8017 §9.1.1 allows for the key is accepted (0 … emLen − hLen − 2), one
// octet more is refused with a problem that names the bound.
import { describe, expect, it } from '@jest/globals';
import { constants, sign } from 'node:crypto';
import { parseCsr } from '@enrolld/core/ca/index.js';
import { derExplicit, derInteger, derNull, derSequence } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { algorithmId, buildCsr, generateTestKey, rejectionOf } from '../support/csr-factory.js';

const pssParams = (hashOid: string, salt: number): Buffer =>
  derSequence(
    derExplicit(0, algorithmId(hashOid, derNull())),
    derExplicit(1, algorithmId(OID.mgf1, algorithmId(hashOid, derNull()))),
    derExplicit(2, derInteger(salt)),
  );

describe('RSASSA-PSS salt length', () => {
  const rsa2048 = generateTestKey({ rsa: 2048 });
  const rsa3072 = generateTestKey({ rsa: 3072 });
  const pssCsr = (key: typeof rsa2048, hash: 'sha256' | 'sha384' | 'sha512', salt: number) => {
    const oid = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 }[hash];
    return buildCsr({
      key: key.privateKey,
      cn: 'a',
      signatureAlgorithmDer: algorithmId(OID.rsassaPss, pssParams(oid, salt)),
      signer: (c) => sign(hash, c, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt }),
    });
  };

  it.each([
    ['2048-bit, SHA-256, salt 0', rsa2048, 'sha256', 0],
    ['2048-bit, SHA-256, salt 20 (the RFC 4055 default)', rsa2048, 'sha256', 20],
    ['2048-bit, SHA-256, salt 32 (hLen, RFC 4055 §3.1 recommends)', rsa2048, 'sha256', 32],
    ['2048-bit, SHA-256, salt 222 (the maximum: OpenSSL 3.0 default)', rsa2048, 'sha256', 222],
    ['2048-bit, SHA-512, salt 190 (the maximum)', rsa2048, 'sha512', 190],
    ['3072-bit, SHA-384, salt 334 (the maximum)', rsa3072, 'sha384', 334],
  ] as const)('accepts %s', (_name, key, hash, salt) => {
    expect(parseCsr(pssCsr(key, hash, salt).der).requested.commonNames).toEqual(['a']);
  });

  it.each([
    ['2048-bit, SHA-256, salt 223', rsa2048, 'sha256', 223, 222],
    ['2048-bit, SHA-512, salt 191', rsa2048, 'sha512', 191, 190],
  ] as const)('refuses %s, one past the maximum, naming the bound', (_name, key, hash, salt, max) => {
    // Signed with the largest salt the key takes; the parameters declare one more, which no signature can carry.
    const { privateKey } = key;
    const oid = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 }[hash];
    const csr = buildCsr({
      key: privateKey,
      cn: 'a',
      signatureAlgorithmDer: algorithmId(OID.rsassaPss, pssParams(oid, salt)),
      signer: (c) => sign(hash, c, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: max }),
    });
    const rejection = rejectionOf(() => parseCsr(csr.der));
    expect(rejection.kind).toBe('bad-signature-algorithm');
    expect(rejection.detail).toContain(`at most ${max}`);
  });
});
