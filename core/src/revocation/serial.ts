// Serials are stored, sent and compared in one canonical form: lowercase minimal DER hex (@enrolld/protocol
// serial.ts says why). Inputs in other spellings are canonicalised once, where they enter: the admin's path parameter
// or CLI flag, and a certificate parsed by a library that prints the number its own way.
import { canonicalSerial } from '@enrolld/protocol';

/**
 * Edge canonicaliser for callers that hold a serial in an unknown spelling and need a string back: the canonical
 * form, or the input lower-cased when it is no serial at all (it then matches nothing stored). On a canonical
 * serial it is the identity, so applying it to a stored serial is never needed.
 */
export function normalizeSerial(hex: string): string {
  return canonicalSerial(hex) ?? hex.toLowerCase();
}

export function isSerialHex(value: string): boolean {
  return /^[0-9a-fA-F]{1,42}$/.test(value);
}
