import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canonicalSerial, isCanonicalSerial } from '@enrolld/protocol';
import { generateSerial, isValidSerial, serialFromHex, serialHex } from '@enrolld/core/ca/index.js';

describe('canonical serial (lowercase minimal DER hex)', () => {
  it('turns every spelling an X.509 tool prints into the form the CA produces', () => {
    expect(canonicalSerial('01AB')).toBe('01ab');
    expect(canonicalSerial('1ab')).toBe('01ab');
    expect(canonicalSerial('00:01:ab')).toBe('01ab');
    expect(canonicalSerial('8F01')).toBe('008f01');
    expect(canonicalSerial('008f01')).toBe('008f01');
    expect(canonicalSerial('0')).toBeUndefined();
    expect(canonicalSerial('xyz')).toBeUndefined();
    expect(canonicalSerial('01:')).toBeUndefined();
    expect(canonicalSerial('7f'.repeat(20))).toBe('7f'.repeat(20));
    expect(canonicalSerial('80'.repeat(20))).toBeUndefined(); // 21 content octets
  });

  it('is what serialHex gives for every serial the CA draws, and parses back with serialFromHex', () => {
    for (let i = 0; i < 200; i++) {
      const hex = serialHex(generateSerial());
      expect(isCanonicalSerial(hex)).toBe(true);
      expect(serialHex(serialFromHex(hex))).toBe(hex);
    }
  });

  it('is the content octets of a valid DER INTEGER, whatever the number', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 20 }), (bytes) => {
        const canonical = canonicalSerial(Buffer.from(bytes).toString('hex'));
        if (canonical === undefined) return bytes.every((b) => b === 0) || (bytes[0]! >= 0x80 && bytes.length === 20);
        return isValidSerial(Buffer.from(canonical, 'hex')) && canonicalSerial(canonical.toUpperCase()) === canonical;
      }),
    );
  });
});
