import { randomFillSync } from 'node:crypto';

// RFC 5280 §4.1.2.2: positive, ≤ 20 octets, unique per CA. CA/B BR §7.1: ≥ 64 bits of CSPRNG output.
// Like Boulder, a fixed first byte in 0x01–0x7f keeps the value positive and its DER minimal without clearing
// any random bit (the 2019 "63-bit serial" incident came from forcing the top random bit to 0), followed by
// 128 random bits: 17 content octets, always.
export const SERIAL_RANDOM_BYTES = 16;
export const SERIAL_LENGTH = 1 + SERIAL_RANDOM_BYTES;
export const DEFAULT_SERIAL_PREFIX = 0x01;

// Random bytes are drawn in batches: one randomFillSync per 256 serials instead of one per serial.
const POOL_SERIALS = 256;
const pool = Buffer.alloc(SERIAL_RANDOM_BYTES * POOL_SERIALS);
let poolOffset = pool.length;

export function generateSerial(prefix: number = DEFAULT_SERIAL_PREFIX): Buffer {
  if (!Number.isInteger(prefix) || prefix < 0x01 || prefix > 0x7f) throw new RangeError('serial prefix must be 0x01–0x7f');
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const serial = Buffer.allocUnsafe(SERIAL_LENGTH);
  serial[0] = prefix;
  pool.copy(serial, 1, poolOffset, poolOffset + SERIAL_RANDOM_BYTES);
  // Never hand out the same bytes twice.
  pool.fill(0, poolOffset, poolOffset + SERIAL_RANDOM_BYTES);
  poolOffset += SERIAL_RANDOM_BYTES;
  return serial;
}

/** A new serial with the default prefix (the name the enrollment use case imports). */
export const newSerial = (): Buffer => generateSerial();

/** Lowercase hex of the serial's DER content octets (the form stored and shown everywhere). */
export function serialHex(serial: Uint8Array): string {
  return Buffer.from(serial.buffer, serial.byteOffset, serial.byteLength).toString('hex');
}

/** RFC 5280 §4.1.2.2 check of DER INTEGER content octets: positive, minimal, 1–20 octets. */
export function isValidSerial(serial: Uint8Array): boolean {
  if (serial.length < 1 || serial.length > 20) return false;
  const first = serial[0]!;
  if (first & 0x80) return false; // negative
  if (serial.length === 1) return first !== 0; // zero is not positive
  if (first === 0 && serial[1]! < 0x80) return false; // non-minimal
  return true;
}

/** Parses a hex serial (as stored) back into content octets; throws on anything not a valid serial. */
export function serialFromHex(hex: string): Buffer {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) throw new RangeError('serial must be an even-length hex string');
  const bytes = Buffer.from(hex, 'hex');
  if (!isValidSerial(bytes)) throw new RangeError('serial is not a positive minimal DER INTEGER of ≤ 20 octets');
  return bytes;
}
