// Reads the device identity from the client certificate of a TLS connection (DESIGN.md §2, RELIABILITY.md §1.2.5).
//
// Performance (DESIGN.md §7): building a getPeerCertificate() object costs ~110 µs per CONNECT and
// getPeerX509Certificate() ~200 µs when the client sends its chain. Instead we take the peer certificate DER out of the
// TLS session (SSL_SESSION ASN.1, field `peer [3]`, a few µs; it is there for resumed sessions too, which is what the
// CONNECT-time revocation check needs) and cache the parsed identity by the certificate's SHA-256.
import { X509Certificate, createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { deviceIdFromUri, isValidDeviceId } from '@enrolld/protocol';
import { normalizeSerial } from '../core/revocation/serial.js';

export interface PeerIdentity {
  deviceId: string;
  /** Normalized (lowercase, no leading zeros). */
  serial: string;
  notBefore: number;
  notAfter: number;
}

export type PeerIdentityResult = { ok: true; identity: PeerIdentity } | { ok: false; reason: string };

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(buf: Buffer, offset: number): Tlv | undefined {
  if (offset + 2 > buf.length) return undefined;
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > buf.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    header = 2 + n;
  }
  const end = offset + header + len;
  if (end > buf.length) return undefined;
  return { tag, start: offset + header, end };
}

/**
 * The peer certificate DER inside an OpenSSL SSL_SESSION encoding (ssl/ssl_asn1.c: SEQUENCE { version, sslVersion,
 * cipher, sessionId, masterKey, [1] time, [2] timeout, [3] peer Certificate, … }).
 */
export function peerCertificateFromSession(session: Buffer): Buffer | undefined {
  const top = readTlv(session, 0);
  if (!top || top.tag !== 0x30) return undefined;
  let offset = top.start;
  while (offset < top.end) {
    const field = readTlv(session, offset);
    if (!field) return undefined;
    if (field.tag === 0xa3) {
      const cert = readTlv(session, field.start);
      if (!cert || cert.tag !== 0x30) return undefined;
      return session.subarray(field.start, cert.end);
    }
    offset = field.end;
  }
  return undefined;
}

function commonNameOf(subject: string): string[] {
  return subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice(3));
}

function sanUrisOf(san: string | undefined): string[] {
  if (!san) return [];
  // Node prints "URI:urn:enrolld:device:x, DNS:…"; a value containing ", " is quoted as JSON by Node ≥ 17.3.
  return san
    .split(', ')
    .filter((part) => part.startsWith('URI:'))
    .map((part) => part.slice(4));
}

const KEY_USAGE_OID = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0f]); // 2.5.29.15
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/** The first KeyUsage byte (RFC 5280 §4.2.1.3), or undefined when the extension is absent or malformed. */
export function keyUsageByte(der: Buffer): number | undefined {
  const cert = readTlv(der, 0);
  const tbs = cert && readTlv(der, cert.start);
  if (!tbs) return undefined;
  let offset = tbs.start;
  while (offset < tbs.end) {
    const field = readTlv(der, offset);
    if (!field) return undefined;
    if (field.tag === 0xa3) {
      const list = readTlv(der, field.start);
      if (!list) return undefined;
      let e = list.start;
      while (e < list.end) {
        const ext = readTlv(der, e);
        if (!ext) return undefined;
        const oid = readTlv(der, ext.start);
        if (oid && der.subarray(ext.start, oid.end).equals(KEY_USAGE_OID)) {
          let v = oid.end;
          let value = readTlv(der, v);
          if (value && value.tag === 0x01) {
            v = value.end; // critical BOOLEAN
            value = readTlv(der, v);
          }
          const bits = value && value.tag === 0x04 ? readTlv(der, value.start) : undefined;
          if (!bits || bits.tag !== 0x03 || bits.end - bits.start < 2) return undefined;
          return der[bits.start + 1];
        }
        e = ext.end;
      }
      return undefined;
    }
    offset = field.end;
  }
  return undefined;
}

/**
 * Parses and validates a device certificate (DESIGN.md §2, RELIABILITY.md §1.2): issued by our issuing CA (the TLS
 * layer trusts the root, so this pins the one issuing CA), not a CA, EKU clientAuth, KU digitalSignature, and
 * CN = id = SAN URI id, one of each.
 */
export function identityFromCertificate(der: Buffer, issuer?: X509Certificate): PeerIdentityResult {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    return { ok: false, reason: 'unparseable certificate' };
  }
  if (issuer && !(cert.checkIssued(issuer) && cert.verify(issuer.publicKey))) return { ok: false, reason: 'not issued by the issuing CA' };
  if (cert.ca) return { ok: false, reason: 'a CA certificate is not a device' };
  // Node's X509Certificate.keyUsage lists the extended key usages (RFC 5280 §4.2.1.12).
  if (!(cert.keyUsage ?? []).includes(CLIENT_AUTH)) return { ok: false, reason: 'EKU lacks clientAuth' };
  const ku = keyUsageByte(der);
  if (ku === undefined || (ku & 0x80) === 0) return { ok: false, reason: 'KU lacks digitalSignature' };
  const cns = commonNameOf(cert.subject);
  const uris = sanUrisOf(cert.subjectAltName);
  if (cns.length !== 1 || !isValidDeviceId(cns[0])) return { ok: false, reason: 'subject CN is not one valid device id' };
  const ids = uris.map((u) => deviceIdFromUri(u)).filter((id): id is string => id !== undefined);
  if (uris.length !== 1 || ids.length !== 1) return { ok: false, reason: 'SAN must hold exactly one urn:enrolld:device URI' };
  if (ids[0] !== cns[0]) return { ok: false, reason: 'subject CN and SAN URI name different devices' };
  return {
    ok: true,
    identity: {
      deviceId: cns[0],
      serial: normalizeSerial(cert.serialNumber),
      notBefore: Date.parse(cert.validFrom),
      notAfter: Date.parse(cert.validTo),
    },
  };
}

export interface PeerIdentityReader {
  read(socket: TLSSocket): PeerIdentityResult;
  size(): number;
}

/** Identity reader with a bounded cache keyed by certificate hash (insertion order eviction). */
export function createPeerIdentityReader(options: { issuer?: Buffer | string | undefined; maxEntries?: number } = {}): PeerIdentityReader {
  const maxEntries = options.maxEntries ?? 50_000;
  const issuer = options.issuer === undefined ? undefined : new X509Certificate(options.issuer);
  const cache = new Map<string, PeerIdentityResult>();
  return {
    read(socket) {
      let der: Buffer | undefined;
      const session = typeof socket.getSession === 'function' ? socket.getSession() : undefined;
      if (session) der = peerCertificateFromSession(session);
      if (!der) {
        // Not a TLS socket we know (or an OpenSSL that encodes sessions differently): take the slow, sure path.
        const raw = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false)?.raw : undefined;
        if (!raw || raw.length === 0) return { ok: false, reason: 'no client certificate' };
        der = raw;
      }
      const key = createHash('sha256').update(der).digest('base64');
      const hit = cache.get(key);
      if (hit) return hit;
      const result = identityFromCertificate(der, issuer);
      if (cache.size >= maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest !== undefined) cache.delete(oldest);
      }
      cache.set(key, result);
      return result;
    },
    size: () => cache.size,
  };
}
