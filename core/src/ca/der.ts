// A small, strict DER reader and writer for the issuance hot path.
// Why not asn1js here: untrusted CSRs must be parsed in bounded time and depth (asn1js #131 unbounded recursion,
// #148 quadratic OID parsing), and BER leniency (indefinite lengths, non-minimal encodings) must be refused
// because the signature covers exact bytes (X.690 §10/§11 DER rules).

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

// Universal tags used here (X.690 §8).
export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_ENUMERATED = 0x0a;
export const TAG_UTF8_STRING = 0x0c;
export const TAG_PRINTABLE_STRING = 0x13;
export const TAG_TELETEX_STRING = 0x14;
export const TAG_IA5_STRING = 0x16;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_UNIVERSAL_STRING = 0x1c;
export const TAG_BMP_STRING = 0x1e;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

/** One TLV: `start` is the tag offset, `[valueStart, end)` the contents. */
export interface Tlv {
  tag: number;
  start: number;
  valueStart: number;
  end: number;
}

/** Longest OID content we accept anywhere; real OIDs are < 40 bytes (asn1js #148 came from a 254 KB OID). */
export const MAX_OID_BYTES = 64;

/**
 * Reads one TLV at `pos` that must end at or before `limit`.
 * Only the low tag-number form and definite, minimal lengths are DER (X.690 §10.1, §8.1.3.5).
 */
export function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new DerError('truncated TLV');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not supported');
  const first = buf[pos + 1]!;
  let len: number;
  let valueStart: number;
  if (first < 0x80) {
    len = first;
    valueStart = pos + 2;
  } else if (first === 0x80) {
    throw new DerError('indefinite length (BER) is not DER');
  } else {
    const n = first & 0x7f;
    if (n > 3) throw new DerError('length too large');
    if (pos + 2 + n > limit) throw new DerError('truncated length');
    if (buf[pos + 2] === 0) throw new DerError('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i]!;
    if (len < 0x80) throw new DerError('non-minimal length');
    valueStart = pos + 2 + n;
  }
  const end = valueStart + len;
  if (end > limit) throw new DerError('length exceeds enclosing data');
  return { tag, start: pos, valueStart, end };
}

/** Reads a TLV and requires its tag. */
export function expectTlv(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const tlv = readTlv(buf, pos, limit);
  if (tlv.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  return tlv;
}

/** Reads the children of a constructed TLV (bounded count). */
export function readChildren(buf: Uint8Array, parent: Tlv, maxChildren = 256): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.valueStart;
  while (pos < parent.end) {
    if (out.length >= maxChildren) throw new DerError('too many elements');
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

export interface WellFormedLimits {
  maxDepth: number;
  maxNodes: number;
}

/**
 * Checks that `[start, end)` is exactly one DER TLV tree: definite minimal lengths everywhere, no trailing bytes,
 * depth and node count bounded, and primitive universal types canonical (X.690 §10/§11). Iterative, so a
 * deeply nested input costs a bounded loop, never a deep stack (asn1js #131).
 */
export function assertWellFormed(buf: Uint8Array, start: number, end: number, limits: WellFormedLimits): void {
  if (readTlv(buf, start, end).end !== end) throw new DerError('trailing bytes after DER');
  // ends[0] is the outer bound; every later entry is an open constructed TLV, so depth = ends.length - 1.
  const ends: number[] = [end];
  let pos = start;
  let nodes = 0;
  for (;;) {
    while (ends.length > 0 && pos === ends[ends.length - 1]) ends.pop();
    if (ends.length === 0) return;
    const tlv = readTlv(buf, pos, ends[ends.length - 1]!);
    if (++nodes > limits.maxNodes) throw new DerError('too many DER elements');
    const tag = tlv.tag;
    if (tag & 0x20) {
      // Universal constructed types other than SEQUENCE/SET are BER-only (X.690 §10.2: strings are primitive).
      if ((tag & 0xc0) === 0 && tag !== TAG_SEQUENCE && tag !== TAG_SET) throw new DerError('constructed string (BER)');
      if (ends.length > limits.maxDepth) throw new DerError('nesting too deep');
      ends.push(tlv.end);
      pos = tlv.valueStart;
    } else {
      if (tag === 0x10 || tag === 0x11) throw new DerError('primitive SEQUENCE/SET');
      checkPrimitive(buf, tlv);
      pos = tlv.end;
    }
  }
}

function checkPrimitive(buf: Uint8Array, tlv: Tlv): void {
  const len = tlv.end - tlv.valueStart;
  switch (tlv.tag) {
    case TAG_BOOLEAN: {
      const v = buf[tlv.valueStart];
      if (len !== 1 || (v !== 0x00 && v !== 0xff)) throw new DerError('BOOLEAN is not DER'); // X.690 §11.1
      return;
    }
    case TAG_INTEGER:
    case TAG_ENUMERATED:
      checkIntegerContent(buf, tlv.valueStart, tlv.end);
      return;
    case TAG_BIT_STRING: {
      if (len < 1) throw new DerError('empty BIT STRING');
      const unused = buf[tlv.valueStart]!;
      if (unused > 7 || (len === 1 && unused !== 0)) throw new DerError('bad BIT STRING unused-bits');
      // X.690 §11.2.1: unused bits are zero.
      if (unused > 0 && (buf[tlv.end - 1]! & ((1 << unused) - 1)) !== 0) throw new DerError('BIT STRING padding not zero');
      return;
    }
    case TAG_NULL:
      if (len !== 0) throw new DerError('NULL with content');
      return;
    case TAG_OID:
      checkOidContent(buf, tlv.valueStart, tlv.end);
      return;
    default:
      return;
  }
}

/** X.690 §8.3.2: an INTEGER has ≥ 1 content octet and its first 9 bits are not all 0 or all 1. */
export function checkIntegerContent(buf: Uint8Array, start: number, end: number): void {
  if (end <= start) throw new DerError('empty INTEGER');
  if (end - start > 1) {
    const a = buf[start]!;
    const b = buf[start + 1]!;
    if ((a === 0x00 && b < 0x80) || (a === 0xff && b >= 0x80)) throw new DerError('non-minimal INTEGER');
  }
}

/** X.690 §8.19: subidentifiers are base-128 with no leading 0x80 octet; the last octet ends a subidentifier. */
export function checkOidContent(buf: Uint8Array, start: number, end: number): void {
  const len = end - start;
  if (len < 1) throw new DerError('empty OID');
  if (len > MAX_OID_BYTES) throw new DerError('OID too long');
  if (buf[end - 1]! & 0x80) throw new DerError('truncated OID');
  let atStart = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (atStart && b === 0x80) throw new DerError('non-minimal OID subidentifier');
    atStart = (b & 0x80) === 0;
  }
}

/** Dotted form of an OID's content octets (bounded by MAX_OID_BYTES, checked first). */
export function decodeOid(buf: Uint8Array, start: number, end: number): string {
  checkOidContent(buf, start, end);
  const parts: string[] = [];
  let value = 0n;
  let first = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    value = (value << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      if (first) {
        const head = value < 40n ? 0n : value < 80n ? 1n : 2n;
        parts.push(head.toString(), (value - head * 40n).toString());
        first = false;
      } else {
        parts.push(value.toString());
      }
      value = 0n;
    }
  }
  return parts.join('.');
}

/** Hex of an OID's content octets: a cheap map key for known OIDs. */
export function oidKey(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== TAG_OID) throw new DerError('expected OID');
  checkOidContent(buf, tlv.valueStart, tlv.end);
  return Buffer.from(buf.buffer, buf.byteOffset + tlv.valueStart, tlv.end - tlv.valueStart).toString('hex');
}

export function oidContentHex(oid: string): string {
  return encodeOidContent(oid).toString('hex');
}

/** Content bytes of an INTEGER as a positive value check (RFC 5280 §4.1.2.2 for serials). */
export function isPositiveMinimalInteger(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  if (bytes[0]! & 0x80) return false;
  if (bytes.length > 1 && bytes[0] === 0 && bytes[1]! < 0x80) return false;
  if (bytes.length === 1 && bytes[0] === 0) return false;
  return true;
}

/** The `n` decimal digits at `at` as a number (a Time's fields). */
function decimalDigits(buf: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let k = 0; k < n; k++) {
    const c = buf[at + k]! - 0x30;
    if (c < 0 || c > 9) throw new DerError('bad time digit');
    v = v * 10 + c;
  }
  return v;
}

/** Decodes UTCTime / GeneralizedTime in the RFC 5280 §4.1.2.5 profile (Z, seconds, no fractions). */
export function decodeTime(buf: Uint8Array, tlv: Tlv): Date {
  const len = tlv.end - tlv.valueStart;
  let year: number;
  let i = tlv.valueStart;
  if (tlv.tag === TAG_UTC_TIME) {
    if (len !== 13) throw new DerError('UTCTime must be YYMMDDHHMMSSZ');
    const yy = decimalDigits(buf, i, 2);
    i += 2;
    year = yy >= 50 ? 1900 + yy : 2000 + yy; // RFC 5280 §4.1.2.5.1
  } else if (tlv.tag === TAG_GENERALIZED_TIME) {
    if (len !== 15) throw new DerError('GeneralizedTime must be YYYYMMDDHHMMSSZ');
    year = decimalDigits(buf, i, 4);
    i += 4;
  } else {
    throw new DerError('expected a Time');
  }
  // No closure per call: the server runs under tsx, whose keepNames gives each named closure a defineProperty call.
  const month = decimalDigits(buf, i, 2);
  const day = decimalDigits(buf, i + 2, 2);
  const hour = decimalDigits(buf, i + 4, 2);
  const minute = decimalDigits(buf, i + 6, 2);
  const second = decimalDigits(buf, i + 8, 2);
  i += 10;
  if (buf[i] !== 0x5a) throw new DerError('time must end in Z');
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  if (
    month < 1 || month > 12 || d.getUTCDate() !== day || d.getUTCHours() !== hour ||
    d.getUTCMinutes() !== minute || d.getUTCSeconds() !== second
  ) {
    throw new DerError('invalid calendar time');
  }
  return d;
}

// ───────────────────────────── writer ─────────────────────────────

export function lengthOctets(len: number): number {
  return len < 0x80 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 4;
}

/** Writes a tag and DER length at `pos`; returns the new position. */
export function writeHeader(out: Uint8Array, pos: number, tag: number, len: number): number {
  out[pos++] = tag;
  if (len < 0x80) {
    out[pos++] = len;
  } else if (len < 0x100) {
    out[pos++] = 0x81;
    out[pos++] = len;
  } else if (len < 0x10000) {
    out[pos++] = 0x82;
    out[pos++] = len >> 8;
    out[pos++] = len & 0xff;
  } else {
    out[pos++] = 0x83;
    out[pos++] = (len >> 16) & 0xff;
    out[pos++] = (len >> 8) & 0xff;
    out[pos++] = len & 0xff;
  }
  return pos;
}

export function headerLength(len: number): number {
  return 1 + lengthOctets(len);
}

export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const out = Buffer.allocUnsafe(headerLength(len) + len);
  let pos = writeHeader(out, 0, tag, len);
  for (const c of content) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

export const derSequence = (...parts: Uint8Array[]): Buffer => tlv(TAG_SEQUENCE, ...parts);
export const derSet = (...parts: Uint8Array[]): Buffer => tlv(TAG_SET, ...parts);
export const derOctetString = (bytes: Uint8Array): Buffer => tlv(TAG_OCTET_STRING, bytes);
export const derNull = (): Buffer => Buffer.from([TAG_NULL, 0]);
export const derBoolean = (value: boolean): Buffer => Buffer.from([TAG_BOOLEAN, 1, value ? 0xff : 0x00]);
export const derUtf8String = (s: string): Buffer => tlv(TAG_UTF8_STRING, Buffer.from(s, 'utf8'));
export const derIa5String = (s: string): Buffer => tlv(TAG_IA5_STRING, Buffer.from(s, 'latin1'));
export const derPrintableString = (s: string): Buffer => tlv(TAG_PRINTABLE_STRING, Buffer.from(s, 'latin1'));
/** Context-specific constructed [n] (EXPLICIT, or IMPLICIT of a constructed type). */
export const derExplicit = (n: number, ...content: Uint8Array[]): Buffer => tlv(0xa0 | n, ...content);
/** Context-specific primitive [n] IMPLICIT. */
export const derImplicit = (n: number, bytes: Uint8Array): Buffer => tlv(0x80 | n, bytes);

export function derBitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  return tlv(TAG_BIT_STRING, Buffer.from([unusedBits]), bytes);
}

export function encodeOidContent(oid: string): Buffer {
  const arcs = oid.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`bad OID ${oid}`);
    return BigInt(s);
  });
  if (arcs.length < 2) throw new Error(`bad OID ${oid}`);
  const bytes: number[] = [];
  const push = (v: bigint): void => {
    const tmp: number[] = [Number(v & 0x7fn)];
    v >>= 7n;
    while (v > 0n) {
      tmp.unshift(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(...tmp);
  };
  push(arcs[0]! * 40n + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return Buffer.from(bytes);
}

export const derOid = (oid: string): Buffer => tlv(TAG_OID, encodeOidContent(oid));

/** Minimal two's-complement content octets of a non-negative integer (X.690 §8.3). */
export function integerContent(value: bigint | number | Uint8Array): Buffer {
  if (value instanceof Uint8Array) {
    let i = 0;
    while (i < value.length - 1 && value[i] === 0) i++;
    const trimmed = Buffer.from(value.subarray(i));
    if (trimmed.length === 0) return Buffer.from([0]);
    return trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  }
  let v = BigInt(value);
  if (v < 0n) throw new Error('negative INTEGER not supported');
  let hex = v.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return integerContent(Buffer.from(hex, 'hex'));
}

export const derInteger = (value: bigint | number | Uint8Array): Buffer => tlv(TAG_INTEGER, integerContent(value));
export const derEnumerated = (value: number): Buffer => tlv(TAG_ENUMERATED, integerContent(value));

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always Z and whole seconds. */
export function derTime(date: Date): Buffer {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new Error('invalid date');
  const y = date.getUTCFullYear();
  if (y < 1950 || y > 9999) throw new Error('year out of range for RFC 5280 Time');
  const rest =
    pad2(date.getUTCMonth() + 1) + pad2(date.getUTCDate()) + pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) + pad2(date.getUTCSeconds()) + 'Z';
  if (y < 2050) return tlv(TAG_UTC_TIME, Buffer.from(pad2(y % 100) + rest, 'latin1'));
  return tlv(TAG_GENERALIZED_TIME, Buffer.from(String(y) + rest, 'latin1'));
}

/** Writes derTime(date) into `out` at `pos` (hot path: no intermediate buffers). Returns the new position. */
export function writeTime(out: Uint8Array, pos: number, date: Date): number {
  const y = date.getUTCFullYear();
  const generalized = y >= 2050;
  out[pos++] = generalized ? TAG_GENERALIZED_TIME : TAG_UTC_TIME;
  out[pos++] = generalized ? 15 : 13;
  const put2 = (n: number): void => {
    out[pos++] = 0x30 + ((n / 10) | 0);
    out[pos++] = 0x30 + (n % 10);
  };
  if (generalized) put2((y / 100) | 0);
  put2(y % 100);
  put2(date.getUTCMonth() + 1);
  put2(date.getUTCDate());
  put2(date.getUTCHours());
  put2(date.getUTCMinutes());
  put2(date.getUTCSeconds());
  out[pos++] = 0x5a;
  return pos;
}

export function timeLength(date: Date): number {
  return date.getUTCFullYear() >= 2050 ? 17 : 15;
}

export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** First PEM block with `label`, as DER. Off the hot path (CA material). */
export function fromPem(pem: string, label: string): Buffer {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`);
  const m = re.exec(pem);
  if (!m || m[1] === undefined) throw new Error(`no PEM block "${label}"`);
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}
