// Hostile CSR inputs (CSR-10: asn1js #131 unbounded recursion, #148 quadratic OID parsing), shared by the unit test that
// checks each is refused for the right reason and by `npm run bench:csr`, which times them.
import { derOid, derSequence, derSet, tlv, toPem } from '@enrolld/core/ca/der.js';
import { buildCsr } from './csr-factory.js';

/** `depth` nested SEQUENCEs around `inner`, built from the inside out. */
export function nested(depth: number, inner: Buffer = Buffer.alloc(0)): Buffer {
  let buf = inner;
  for (let i = 0; i < depth; i++) buf = tlv(0x30, buf);
  return buf;
}

/** An attribute of a private OID whose value is `value`, placed in an otherwise valid, correctly signed CSR. */
export const csrWithAttribute = (attribute: Buffer): Buffer => buildCsr({ cn: 'bounds', attributes: [attribute] }).der;
export const privateAttribute = (value: Buffer): Buffer => derSequence(derOid('1.3.6.1.4.1.55555.1'), derSet(value));

const hugeOid = (bytes: number): Buffer => {
  const content = Buffer.alloc(bytes, 0x81);
  content[0] = 0x2b;
  content[bytes - 1] = 0x01;
  return tlv(0x06, content);
};

/** [name, input, the rejection detail it must get] */
export const hostileCsrs: Array<[string, () => string | Buffer, RegExp]> = [
  ['20 KiB of DER', () => Buffer.concat([Buffer.from([0x30, 0x82, 0x4f, 0xfc]), Buffer.alloc(20 * 1024 - 4)]), /larger than 16384/],
  ['20 KiB of PEM text', () => toPem('CERTIFICATE REQUEST', Buffer.alloc(15 * 1024)), /larger than 16384/],
  ['10,000-deep nested SEQUENCE (DER)', () => nested(10_000), /larger than 16384/],
  ['10,000-deep nested SEQUENCE (base64)', () => nested(10_000).toString('base64'), /larger than 16384/],
  ['3,000-deep nested SEQUENCE inside a CSR attribute (fits in 16 KiB)', () => csrWithAttribute(privateAttribute(nested(3_000))), /nesting too deep/],
  ['nesting of depth 17 (one past the limit) inside a CSR attribute', () => csrWithAttribute(privateAttribute(nested(12))), /nesting too deep/],
  ['a 250 KB OID', () => derSequence(derSequence(hugeOid(250_000))), /larger than 16384/],
  ['a 10 KB OID inside a CSR attribute', () => csrWithAttribute(derSequence(hugeOid(10_000), derSet())), /OID too long/],
  ['a 65-byte OID as the signature algorithm', () => buildCsr({ cn: 'x', signatureAlgorithmDer: derSequence(hugeOid(65)), signer: () => Buffer.alloc(8) }).der, /OID too long/],
  ['10,000 attributes', () => buildCsr({ cn: 'x', attributes: Array.from({ length: 10_000 }, () => privateAttribute(Buffer.from([0x05, 0x00]))) }).der, /larger than 16384/],
  ['1,000 attributes (fits in 16 KiB)', () => buildCsr({ cn: 'x', attributes: Array.from({ length: 1_000 }, () => derSequence(derOid('2.5.4.3'), derSet())) }).der, /too many/],
  ['3,000 NULLs in one SET (node budget)', () => csrWithAttribute(privateAttribute(Buffer.concat(Array.from({ length: 3_000 }, () => Buffer.from([0x05, 0x00]))))), /too many DER elements/],
  ['a length field claiming 16 MB', () => Buffer.from([0x30, 0x84, 0x01, 0x00, 0x00, 0x00, 0x00]), /length too large|truncated/],
];

