import { describe, expect, it } from '@jest/globals';
import { constants, createHash, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { parseCsr, parseCsrAsync } from '@enrolld/core/ca/index.js';
import { derExplicit, derInteger, derNull, derOid, derSequence, tlv, toPem } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { algorithmId, buildCsr, generateTestKey, rejectionOf, subjectName } from '../support/csr-factory.js';

const CLIENT_KINDS = ['bad-csr', 'bad-key', 'bad-signature-algorithm'];

describe('CSR-09 encodings', () => {
  const csr = buildCsr({ cn: 'enc-1' });
  const b64 = csr.der.toString('base64');

  it.each([
    ['PEM "CERTIFICATE REQUEST"', csr.pem],
    ['PEM "NEW CERTIFICATE REQUEST"', toPem('NEW CERTIFICATE REQUEST', csr.der)],
    ['PEM with CRLF and surrounding whitespace', `\r\n  ${csr.pem.replace(/\n/g, '\r\n')}\n\n`],
    ['PEM as bytes', Buffer.from(csr.pem)],
    ['raw DER', csr.der],
    ['raw DER as Uint8Array', new Uint8Array(csr.der)],
    ['base64 DER (RFC 8951)', b64],
    ['base64 DER with line breaks and spaces', b64.replace(/(.{64})/g, '$1\r\n ') + '\n'],
    ['base64 DER as bytes', Buffer.from(b64)],
  ])('accepts %s', (_name, input) => {
    const parsed = parseCsr(input);
    expect(parsed.der.equals(csr.der)).toBe(true);
    expect(parsed.spkiDer.equals(csr.spkiDer)).toBe(true);
    expect(parsed.sha256.equals(createHash('sha256').update(csr.der).digest())).toBe(true);
    expect(parsed.publicKeySha256.equals(createHash('sha256').update(csr.spkiDer).digest())).toBe(true);
    expect(parsed.keyDescription).toBe('EC P-256');
    expect(parsed.requested.commonNames).toEqual(['enc-1']);
  });

  it('parseCsrAsync gives the same result', async () => {
    const a = parseCsr(csr.pem);
    const b = await parseCsrAsync(csr.pem);
    expect(b.der.equals(a.der)).toBe(true);
    expect(b.spkiDer.equals(a.spkiDer)).toBe(true);
    expect(b.publicKey.export({ format: 'der', type: 'spki' }).equals(csr.spkiDer)).toBe(true);
  });

  // A copy of the input is kept: mutating the caller's buffer afterwards must not change the parsed CSR.
  it('does not alias the caller buffer', () => {
    const input = Buffer.from(csr.der);
    const parsed = parseCsr(input);
    input.fill(0);
    expect(parsed.der.equals(csr.der)).toBe(true);
  });

  const outer = csr.der;
  // Re-wrap the CertificationRequest content with an indefinite length (BER, X.690 §8.1.3.6).
  const contentStart = outer[1]! & 0x80 ? 2 + (outer[1]! & 0x7f) : 2;
  const indefinite = Buffer.concat([Buffer.from([0x30, 0x80]), outer.subarray(contentStart), Buffer.from([0, 0])]);
  // Same content with a length of the right value but one octet too many (X.690 §10.1).
  const len = outer.length - contentStart;
  const nonMinimalLength = Buffer.concat([Buffer.from([0x30, 0x83, 0, len >> 8, len & 0xff]), outer.subarray(contentStart)]);
  // A CSR whose version INTEGER is 02 02 00 00 and whose signature is valid over those bytes.
  const key = generateTestKey('P-256');
  const badVersionCri = derSequence(Buffer.from([0x02, 0x02, 0x00, 0x00]), subjectName({ cn: 'x' }), key.spkiDer, derExplicit(0));
  const nonMinimalInteger = derSequence(badVersionCri, algorithmId(OID.ecdsaWithSha256), tlv(0x03, Buffer.from([0]), sign('sha256', badVersionCri, key.privateKey)));

  it.each([
    ['empty string', '', /empty/],
    ['empty bytes', Buffer.alloc(0), /empty/],
    ['invalid base64 character', b64.slice(0, 40) + '*' + b64.slice(41), /base64/],
    ['base64 with bad length', b64.slice(0, -1), /base64/],
    ['base64 with non-canonical padding bits', b64.replace(/.(=*)$/, (m, pad: string) => 'B' + pad), /base64|DER|CSR/],
    ['PEM with a CERTIFICATE label', csr.pem.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'), /PEM/],
    ['PEM with mismatched BEGIN/END labels', csr.pem.replace('END CERTIFICATE REQUEST', 'END NEW CERTIFICATE REQUEST'), /PEM/],
    ['two PEM blocks', csr.pem + csr.pem, /PEM/],
    ['PEM with text after the block', csr.pem + 'trailing text', /PEM/],
    ['trailing bytes after the DER', Buffer.concat([csr.der, Buffer.from([0])]), /trailing/],
    ['trailing bytes after the DER (base64)', Buffer.concat([csr.der, Buffer.from([0, 0])]).toString('base64'), /trailing/],
    ['BER indefinite length', indefinite, /indefinite/],
    ['non-minimal length', nonMinimalLength, /non-minimal length/],
    ['non-minimal INTEGER', nonMinimalInteger, /non-minimal INTEGER/],
    ['truncated DER', csr.der.subarray(0, csr.der.length - 3), /DER/],
    ['not a SEQUENCE', Buffer.from([0x04, 0x01, 0x00]), /base64|DER|CSR/],
  ])('rejects %s as bad-csr', (_name, input, detail) => {
    expect(rejectionOf(() => parseCsr(input as string | Buffer))).toEqual({ kind: 'bad-csr', detail: expect.stringMatching(detail) });
  });

  it('rejects non-string, non-bytes input as bad-csr', () => {
    expect(rejectionOf(() => parseCsr(42 as unknown as string)).kind).toBe('bad-csr');
    expect(rejectionOf(() => parseCsr({} as unknown as string)).kind).toBe('bad-csr');
  });
});

describe('CSR-01 signature integrity', () => {
  it('rejects every single-bit flip anywhere in the CSR with a client error (never accepts, never a plain Error)', () => {
    const csr = buildCsr({ cn: 'flip-1', sans: [{ type: 'uri', value: 'urn:enrolld:device:flip-1' }] });
    const kinds = new Map<string, number>();
    let accepted = 0;
    for (let i = 0; i < csr.der.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const mutated = Buffer.from(csr.der);
        mutated[i]! ^= 1 << bit;
        let error: unknown;
        try {
          parseCsr(mutated);
          accepted++;
        } catch (e) {
          error = e;
        }
        if (error !== undefined) {
          expect(error).toBeInstanceOf(EnrollError);
          const kind = (error as EnrollError).kind;
          expect(CLIENT_KINDS).toContain(kind);
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
        }
      }
    }
    expect(accepted).toBe(0);
    expect(kinds.get('bad-csr')).toBeGreaterThan(0);
  });

  it('rejects a flipped bit inside the CertificationRequestInfo subject (structure intact) as a bad signature', () => {
    const csr = buildCsr({ cn: 'flip-cn' });
    const at = csr.der.indexOf(Buffer.from('flip-cn'));
    const mutated = Buffer.from(csr.der);
    mutated[at]! ^= 0x01;
    expect(rejectionOf(() => parseCsr(mutated))).toEqual({ kind: 'bad-csr', detail: 'CSR signature does not verify' });
  });

  it('rejects a flipped bit inside the signature value', () => {
    const csr = buildCsr({ cn: 'flip-sig' });
    const mutated = Buffer.from(csr.der);
    mutated[mutated.length - 5]! ^= 0x10;
    expect(rejectionOf(() => parseCsr(mutated)).kind).toBe('bad-csr');
  });

  it("rejects another key's signature over the same CertificationRequestInfo", () => {
    const mine = generateTestKey('P-256');
    const other = generateTestKey('P-256');
    const csr = buildCsr({ key: other.privateKey, spkiDer: mine.spkiDer, cn: 'swap' });
    expect(rejectionOf(() => parseCsr(csr.der))).toEqual({ kind: 'bad-csr', detail: 'CSR signature does not verify' });
  });

  // Java CVE-2022-21449 ("psychic signatures"): r = s = 0 verified under any key.
  it.each([
    ['r = 0', (s: Buffer) => derSequence(derInteger(0), s)],
    ['s = 0', (s: Buffer) => derSequence(s, derInteger(0))],
    ['r = s = 0', () => derSequence(derInteger(0), derInteger(0))],
    ['r = n (the group order)', (s: Buffer) => derSequence(derInteger(BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551')), s)],
  ])('rejects an ECDSA signature with %s', (_name, make) => {
    const key = generateTestKey('P-256');
    const csr = buildCsr({
      key: key.privateKey,
      cn: 'zero',
      signatureAlgorithmDer: algorithmId(OID.ecdsaWithSha256),
      signer: () => make(derInteger(BigInt(1) << BigInt(200))),
    });
    expect(rejectionOf(() => parseCsr(csr.der)).kind).toBe('bad-csr');
  });

  it('rejects a signature that is not a DER Ecdsa-Sig-Value', () => {
    const csr = buildCsr({ cn: 'junk-sig', signatureAlgorithmDer: algorithmId(OID.ecdsaWithSha256), signer: () => Buffer.from('not a signature') });
    expect(rejectionOf(() => parseCsr(csr.der)).kind).toBe('bad-csr');
  });

  it('rejects an empty RSA signature and a wrong-length one', () => {
    const key = generateTestKey({ rsa: 2048 });
    for (const signer of [() => Buffer.alloc(0), () => Buffer.alloc(100, 1)]) {
      const csr = buildCsr({ key: key.privateKey, cn: 'rsa-sig', signatureAlgorithmDer: algorithmId(OID.sha256WithRsa, derNull()), signer });
      expect(rejectionOf(() => parseCsr(csr.der)).kind).toBe('bad-csr');
    }
  });
});

describe('CSR-02 signature algorithm allow-list', () => {
  const ec = generateTestKey('P-256');
  const p384 = generateTestKey('P-384');
  const rsa = generateTestKey({ rsa: 2048 });
  const pssParams = (hashOid: string, mgfHashOid: string, salt: number): Buffer =>
    derSequence(
      derExplicit(0, algorithmId(hashOid, derNull())),
      derExplicit(1, algorithmId(OID.mgf1, algorithmId(mgfHashOid, derNull()))),
      derExplicit(2, derInteger(salt)),
    );

  it.each([
    ['ecdsa-with-SHA256 (P-256)', () => buildCsr({ key: ec.privateKey, cn: 'a' })],
    ['ecdsa-with-SHA384 (P-384)', () => buildCsr({ key: p384.privateKey, cn: 'a' })],
    [
      'ecdsa-with-SHA384 (P-256)',
      () => buildCsr({ key: ec.privateKey, cn: 'a', signatureAlgorithmDer: algorithmId(OID.ecdsaWithSha384), signer: (c) => sign('sha384', c, ec.privateKey) }),
    ],
    ['sha256WithRSAEncryption', () => buildCsr({ key: rsa.privateKey, cn: 'a' })],
    [
      'sha256WithRSAEncryption, parameters absent (RFC 4055 §5)',
      () => buildCsr({ key: rsa.privateKey, cn: 'a', signatureAlgorithmDer: algorithmId(OID.sha256WithRsa), signer: (c) => sign('sha256', c, rsa.privateKey) }),
    ],
    ...(['sha384', 'sha512'] as const).map(
      (h) =>
        [
          `${h}WithRSAEncryption`,
          () =>
            buildCsr({
              key: rsa.privateKey,
              cn: 'a',
              signatureAlgorithmDer: algorithmId(h === 'sha384' ? OID.sha384WithRsa : OID.sha512WithRsa, derNull()),
              signer: (c) => sign(h, c, rsa.privateKey),
            }),
        ] as const,
    ),
    ...([
      ['sha256', OID.sha256, 32],
      ['sha384', OID.sha384, 48],
      ['sha512', OID.sha512, 64],
    ] as const).map(
      ([h, oid, salt]) =>
        [
          `RSASSA-PSS with ${h}`,
          () =>
            buildCsr({
              key: rsa.privateKey,
              cn: 'a',
              signatureAlgorithmDer: algorithmId(OID.rsassaPss, pssParams(oid, oid, salt)),
              signer: (c) => sign(h, c, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: salt }),
            }),
        ] as const,
    ),
  ])('accepts %s', (_name, make) => {
    expect(parseCsr(make().der).requested.commonNames).toEqual(['a']);
  });

  const rsaSigned = (oid: string, hash: string | null, params: Buffer | null = derNull()) => () =>
    buildCsr({ key: rsa.privateKey, cn: 'a', signatureAlgorithmDer: algorithmId(oid, params ?? undefined), signer: (c) => sign(hash, c, rsa.privateKey) });
  const ecSigned = (oid: string, hash: string, params?: Buffer) => () =>
    buildCsr({ key: ec.privateKey, cn: 'a', signatureAlgorithmDer: algorithmId(oid, params), signer: (c) => sign(hash, c, ec.privateKey) });

  it.each([
    ['md5WithRSAEncryption', rsaSigned(OID.md5WithRsa, 'md5'), /md5WithRSAEncryption is not allowed/],
    ['sha1WithRSAEncryption', rsaSigned(OID.sha1WithRsa, 'sha1'), /sha1WithRSAEncryption is not allowed/],
    ['sha224WithRSAEncryption', rsaSigned(OID.sha224WithRsa, 'sha224'), /sha224WithRSAEncryption is not allowed/],
    ['ecdsa-with-SHA1', ecSigned(OID.ecdsaWithSha1, 'sha1'), /ecdsa-with-SHA1 is not allowed/],
    ['ecdsa-with-SHA512', ecSigned(OID.ecdsaWithSha512, 'sha512'), /ecdsa-with-SHA512 is not allowed/],
    ['ecdsa-with-SHA256 with NULL parameters', ecSigned(OID.ecdsaWithSha256, 'sha256', derNull()), /parameters must be absent/],
    ['an unknown OID', ecSigned('1.2.3.4.5.6.7', 'sha256'), /1\.2\.3\.4\.5\.6\.7 is not allowed/],
    ['RSASSA-PSS without parameters (SHA-1 defaults)', rsaSigned(OID.rsassaPss, 'sha1', null), /SHA-1/],
    [
      'RSASSA-PSS with SHA-1',
      () =>
        buildCsr({
          key: rsa.privateKey,
          cn: 'a',
          signatureAlgorithmDer: algorithmId(OID.rsassaPss, pssParams(OID.sha1, OID.sha1, 20)),
          signer: (c) => sign('sha1', c, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 20 }),
        }),
      /RSASSA-PSS hash 1\.3\.14\.3\.2\.26 is not allowed/,
    ],
    [
      'RSASSA-PSS with MGF1 hash different from the signature hash',
      () =>
        buildCsr({
          key: rsa.privateKey,
          cn: 'a',
          signatureAlgorithmDer: algorithmId(OID.rsassaPss, pssParams(OID.sha256, OID.sha384, 32)),
          signer: (c) => sign('sha256', c, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }),
        }),
      /MGF1/,
    ],
    ['sha256WithRSAEncryption over an EC key', () => buildCsr({ key: ec.privateKey, cn: 'a', signatureAlgorithmDer: algorithmId(OID.sha256WithRsa, derNull()), signer: (c) => sign('sha256', c, ec.privateKey) }), /does not match the EC P-256 key/],
    ['ecdsa-with-SHA256 over an RSA key', rsaSigned(OID.ecdsaWithSha256, 'sha256', null), /does not match the RSA 2048 key/],
  ])('rejects %s as bad-signature-algorithm', (_name, make, detail) => {
    expect(rejectionOf(() => parseCsr(make().der))).toEqual({ kind: 'bad-signature-algorithm', detail: expect.stringMatching(detail) });
  });

  it('rejects a real DSA CSR (dsa-with-SHA256) as bad-signature-algorithm', () => {
    const dsa = generateKeyPairDsa();
    const csr = buildCsr({ key: dsa, cn: 'a', signatureAlgorithmDer: algorithmId(OID.dsaWithSha256), signer: (c) => sign('sha256', c, dsa) });
    expect(rejectionOf(() => parseCsr(csr.der))).toEqual({ kind: 'bad-signature-algorithm', detail: expect.stringMatching(/dsa-with-SHA256 is not allowed/) });
  });

  it('rejects a real DSA CSR signed with SHA-1 (dsa-with-SHA1) as bad-signature-algorithm', () => {
    const dsa = generateKeyPairDsa();
    const csr = buildCsr({ key: dsa, cn: 'a', signatureAlgorithmDer: algorithmId(OID.dsaWithSha1), signer: (c) => sign('sha1', c, dsa) });
    expect(rejectionOf(() => parseCsr(csr.der))).toEqual({ kind: 'bad-signature-algorithm', detail: expect.stringMatching(/dsa-with-SHA1 is not allowed/) });
  });

  it('rejects an Ed25519 CSR as bad-signature-algorithm', () => {
    const ed = generateTestKey('ed25519');
    expect(rejectionOf(() => parseCsr(buildCsr({ key: ed.privateKey, cn: 'a' }).der))).toEqual({
      kind: 'bad-signature-algorithm',
      detail: expect.stringMatching(/Ed25519 is not allowed/),
    });
  });

  it('names the OID of an unknown algorithm even when it is long, without echoing more than the bounded OID', () => {
    const csr = buildCsr({ key: ec.privateKey, cn: 'a', signatureAlgorithmDer: derSequence(derOid('1.3.6.1.4.1.99999.1.2.3.4.5.6.7.8.9')), signer: () => Buffer.alloc(8) });
    expect(rejectionOf(() => parseCsr(csr.der)).detail).toContain('1.3.6.1.4.1.99999.1.2.3.4.5.6.7.8.9');
  });
});

let dsaKey: KeyObject | undefined;
/** One DSA key per run (parameter generation takes ~0.5 s). */
function generateKeyPairDsa(): KeyObject {
  dsaKey ??= generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey;
  return dsaKey;
}
