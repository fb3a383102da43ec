// Minimal DER (X.690) encoder and reader: just what a device needs for a PKCS#10 CSR and for reading an EST
// certs-only PKCS#7 reply. Kept here so the simulator depends on no server code and no ASN.1 library.

export const TAG = {
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  ia5String: 0x16,
  sequence: 0x30,
  set: 0x31,
} as const;

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function sequence(...items: Uint8Array[]): Buffer {
  return tlv(TAG.sequence, Buffer.concat(items));
}

/** SET OF: X.690 §11.6 wants the encodings sorted for DER. */
export function setOf(...items: Uint8Array[]): Buffer {
  const sorted = [...items].map((i) => Buffer.from(i)).sort(Buffer.compare);
  return tlv(TAG.set, Buffer.concat(sorted));
}

/** Context-specific tag [n]; constructed unless told otherwise. */
export function contextTag(n: number, content: Uint8Array, constructed = true): Buffer {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

export function integer(value: number | bigint): Buffer {
  let hex = BigInt(value).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]); // stay positive (X.690 §8.3)
  return tlv(TAG.integer, bytes);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => Number.parseInt(p, 10));
  const [first, second, ...rest] = parts;
  if (first === undefined || second === undefined || parts.some((p) => !Number.isSafeInteger(p) || p < 0)) {
    throw new Error(`bad OID ${dotted}`);
  }
  const out: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift((n & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(TAG.oid, Buffer.from(out));
}

export function utf8String(value: string): Buffer {
  return tlv(TAG.utf8String, Buffer.from(value, 'utf8'));
}

export function ia5String(value: string): Buffer {
  return tlv(TAG.ia5String, Buffer.from(value, 'ascii'));
}

export function octetString(content: Uint8Array): Buffer {
  return tlv(TAG.octetString, content);
}

/** BIT STRING with no unused bits (keys and signatures are whole octets). */
export function bitString(content: Uint8Array): Buffer {
  return tlv(TAG.bitString, Buffer.concat([Buffer.from([0]), content]));
}

export interface DerNode {
  tag: number;
  /** offset of the tag octet in the buffer */
  start: number;
  /** offset of the first content octet */
  contentStart: number;
  /** offset just past the content */
  end: number;
}

const MAX_DEPTH = 32;

/** Reads one TLV at `offset`. Only definite lengths (DER), only single-octet tags. */
export function readNode(buf: Uint8Array, offset = 0): DerNode {
  const tag = buf[offset];
  const first = buf[offset + 1];
  if (tag === undefined || first === undefined) throw new Error('DER: truncated');
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-octet tags are not supported');
  let length = first;
  let contentStart = offset + 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 4) throw new Error('DER: indefinite or oversized length');
    length = 0;
    for (let i = 0; i < count; i++) {
      const b = buf[offset + 2 + i];
      if (b === undefined) throw new Error('DER: truncated length');
      length = length * 256 + b;
    }
    contentStart += count;
  }
  const end = contentStart + length;
  if (end > buf.length) throw new Error('DER: content runs past the end');
  return { tag, start: offset, contentStart, end };
}

export function children(buf: Uint8Array, node: DerNode, depth = 0): DerNode[] {
  if (depth > MAX_DEPTH) throw new Error('DER: too deep');
  const out: DerNode[] = [];
  for (let at = node.contentStart; at < node.end; ) {
    const child = readNode(buf, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

export function decodeOid(buf: Uint8Array, node: DerNode): string {
  if (node.tag !== TAG.oid) throw new Error('DER: not an OID');
  const bytes = buf.subarray(node.contentStart, node.end);
  const arcs: number[] = [];
  let value = 0;
  for (const b of bytes) {
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

export function slice(buf: Uint8Array, node: DerNode): Buffer {
  return Buffer.from(buf.subarray(node.start, node.end));
}
