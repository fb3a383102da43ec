import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  assertWellFormed,
  decodeOid,
  decodeTime,
  DerError,
  derInteger,
  derOid,
  derSequence,
  derTime,
  encodeOidContent,
  integerContent,
  readTlv,
  tlv,
} from '@enrolld/core/ca/der.js';
import { parseCsr } from '@enrolld/core/ca/index.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { buildCsr } from '../support/csr-factory.js';

const limits = { maxDepth: 16, maxNodes: 1000 };
const wellFormed = (bytes: number[]) => () => assertWellFormed(Buffer.from(bytes), 0, bytes.length, limits);

describe('DER reader: strict X.690 DER', () => {
  it.each([
    ['indefinite length', [0x30, 0x80, 0x00, 0x00], /indefinite/],
    ['long form for a short length', [0x04, 0x81, 0x01, 0x00], /non-minimal length/],
    ['leading zero in a long length', [0x04, 0x82, 0x00, 0x80, ...new Array(128).fill(0)], /non-minimal length/],
    ['high tag number form', [0x1f, 0x81, 0x00, 0x00], /high tag/],
    ['length past the end', [0x04, 0x05, 0x00], /exceeds/],
    ['trailing bytes', [0x05, 0x00, 0x00], /trailing/],
    ['non-minimal INTEGER (00 7f)', [0x02, 0x02, 0x00, 0x7f], /non-minimal INTEGER/],
    ['non-minimal INTEGER (ff 80)', [0x02, 0x02, 0xff, 0x80], /non-minimal INTEGER/],
    ['empty INTEGER', [0x02, 0x00], /empty INTEGER/],
    ['BOOLEAN 0x01', [0x01, 0x01, 0x01], /BOOLEAN/],
    ['NULL with content', [0x05, 0x01, 0x00], /NULL/],
    ['BIT STRING with 8 unused bits', [0x03, 0x02, 0x08, 0x00], /unused/],
    ['BIT STRING with non-zero padding', [0x03, 0x02, 0x01, 0x01], /padding/],
    ['constructed OCTET STRING (BER)', [0x24, 0x03, 0x04, 0x01, 0x00], /constructed string/],
    ['primitive SEQUENCE', [0x10, 0x00], /primitive SEQUENCE/],
    ['OID with a 0x80 subidentifier start', [0x06, 0x02, 0x80, 0x01], /non-minimal OID/],
    ['truncated OID', [0x06, 0x01, 0x81], /truncated OID/],
    ['child overruns its parent', [0x30, 0x03, 0x04, 0x02, 0x00], /exceeds/],
  ])('rejects %s', (_name, bytes, message) => {
    expect(wellFormed(bytes)).toThrow(message);
  });

  it('bounds depth without recursion', () => {
    let buf: Buffer = Buffer.alloc(0);
    for (let i = 0; i < 17; i++) buf = tlv(0x30, buf);
    expect(() => assertWellFormed(buf, 0, buf.length, limits)).toThrow(/nesting too deep/);
    expect(() => assertWellFormed(buf, 0, buf.length, { maxDepth: 17, maxNodes: 100 })).not.toThrow();
  });

  it('accepts arbitrary well-formed trees built by the writer, and reads back what it wrote (property)', () => {
    const leaf = fc.oneof(
      fc.bigInt({ min: 0n, max: 1n << 200n }).map((v) => derInteger(v)),
      fc.uint8Array({ maxLength: 300 }).map((b) => tlv(0x04, b)),
      fc.constantFrom('2.5.4.3', '1.2.840.10045.4.3.2', '1.3.6.1.4.1.99999.123456789').map((o) => derOid(o)),
    );
    const tree = fc.letrec<{ node: Buffer }>((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 4 }).map((c) => derSequence(...c))),
    })).node;
    fc.assert(
      fc.property(tree, (der) => {
        assertWellFormed(der, 0, der.length, { maxDepth: 64, maxNodes: 10_000 });
        expect(readTlv(der, 0, der.length).end).toBe(der.length);
      }),
      { numRuns: 300 },
    );
  });

  it('OIDs round-trip, including large arcs', () => {
    for (const oid of ['2.5.29.17', '1.2.840.113549.1.1.11', '2.999.1', '1.3.6.1.4.1.18446744073709551617.5']) {
      const content = encodeOidContent(oid);
      expect(decodeOid(content, 0, content.length)).toBe(oid);
    }
  });

  it('times encode per RFC 5280 §4.1.2.5 and decode back', () => {
    for (const iso of ['1950-01-01T00:00:00Z', '2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z', '9999-12-31T23:59:59Z']) {
      const der = derTime(new Date(iso));
      expect(der[0]).toBe(new Date(iso).getUTCFullYear() >= 2050 ? 0x18 : 0x17);
      expect(decodeTime(der, readTlv(der, 0, der.length)).toISOString()).toBe(iso.replace('Z', '.000Z'));
    }
    const bad = Buffer.from('\x17\x0d491332235900Z', 'latin1'); // month 13
    expect(() => decodeTime(bad, readTlv(bad, 0, bad.length))).toThrow(DerError);
  });

  it('integers are minimal two’s complement', () => {
    expect(integerContent(0)).toEqual(Buffer.from([0]));
    expect(integerContent(127)).toEqual(Buffer.from([0x7f]));
    expect(integerContent(128)).toEqual(Buffer.from([0x00, 0x80]));
    expect(integerContent(Buffer.from([0, 0, 0x80]))).toEqual(Buffer.from([0x00, 0x80]));
  });
});

describe('CSR parser fuzz smoke (CSR-11 per-PR): mutated CSRs only ever produce EnrollError client kinds', () => {
  const base = buildCsr({ cn: 'fuzz', sans: [{ type: 'uri', value: 'urn:enrolld:device:fuzz' }] }).der;
  it('random insertions, deletions and overwrites', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('set', 'insert', 'delete'), fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (edits) => {
          let bytes = [...base];
          for (const [op, at, value] of edits) {
            const i = at % (bytes.length + 1);
            if (op === 'set' && i < bytes.length) bytes[i] = value;
            else if (op === 'insert') bytes.splice(i, 0, value);
            else if (op === 'delete') bytes.splice(i, 1);
          }
          const input = Buffer.from(bytes);
          if (input.equals(base)) return;
          try {
            parseCsr(input);
          } catch (error) {
            expect(error).toBeInstanceOf(EnrollError);
            expect(['bad-csr', 'bad-key', 'bad-signature-algorithm']).toContain((error as EnrollError).kind);
            return;
          }
          throw new Error('a mutated CSR was accepted');
        },
      ),
      { numRuns: 2000 },
    );
  });
});
