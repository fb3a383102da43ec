// Reads the device identity from the client certificate of a TLS connection (DESIGN.md §2, RELIABILITY.md §1.2.5).
//
// Performance (DESIGN.md §7): building a getPeerCertificate() object costs ~110 µs per CONNECT,
// getPeerX509Certificate() ~200 µs when the client sends its chain, and any X509Certificate parse pays OpenSSL 3.0's
// decode (~276 µs, PERFORMANCE.md). Instead we take the peer certificate DER out of the TLS session (SSL_SESSION ASN.1,
// field `peer [3]`, a few µs; present for resumed sessions too, which is what the CONNECT-time revocation check needs),
// read the few fields we need with a small DER walker, and cache the result by the certificate's SHA-256.
//
// The TLS layer has already verified the chain and signatures (requestCert + rejectUnauthorized), so this module
// only reads fields and applies the device profile; it never trusts a certificate the handshake did not.
import { X509Certificate, createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { deviceIdFromUri, isValidDeviceId } from '@enrolld/protocol';
import { normalizeSerial } from '@enrolld/core/revocation/serial.js';

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
  /** Offset of the tag byte. */
  offset: number;
  start: number;
  end: number;
}

function readTlv(buf: Buffer, offset: number, limit = buf.length): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = buf[offset]!;
  let len = buf[offset + 1]!;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i]!;
    header = 2 + n;
  }
  const end = offset + header + len;
  if (end > limit) return undefined;
  return { tag, offset, start: offset + header, end };
}

function children(buf: Buffer, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  let offset = parent.start;
  while (offset < parent.end) {
    const t = readTlv(buf, offset, parent.end);
    if (!t) return undefined;
    out.push(t);
    offset = t.end;
  }
  return out;
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
    const field = readTlv(session, offset, top.end);
    if (!field) return undefined;
    if (field.tag === 0xa3) {
      const cert = readTlv(session, field.start, field.end);
      if (!cert || cert.tag !== 0x30) return undefined;
      return session.subarray(field.start, cert.end);
    }
    offset = field.end;
  }
  return undefined;
}

const OID = {
  commonName: Buffer.from('0603550403', 'hex'), // 2.5.4.3
  keyUsage: Buffer.from('0603551d0f', 'hex'), // 2.5.29.15
  subjectAltName: Buffer.from('0603551d11', 'hex'), // 2.5.29.17
  basicConstraints: Buffer.from('0603551d13', 'hex'), // 2.5.29.19
  authorityKeyIdentifier: Buffer.from('0603551d23', 'hex'), // 2.5.29.35
  extKeyUsage: Buffer.from('0603551d25', 'hex'), // 2.5.29.37
  subjectKeyIdentifier: Buffer.from('0603551d0e', 'hex'), // 2.5.29.14
  clientAuth: Buffer.from('06082b06010505070302', 'hex'), // 1.3.6.1.5.5.7.3.2
};

/** RFC 5280 §4.1.2.5.1/.2: UTCTime YYMMDDHHMMSSZ (50–99 → 19xx) or GeneralizedTime YYYYMMDDHHMMSSZ. */
function readTime(buf: Buffer, t: Tlv): number | undefined {
  const s = buf.toString('latin1', t.start, t.end);
  let m: RegExpExecArray | null;
  if (t.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    return Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  if (t.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  return undefined;
}

interface CertificateFields {
  serialHex: string;
  issuerDer: Buffer;
  subjectDer: Buffer;
  notBefore: number;
  notAfter: number;
  commonNames: string[];
  sanUris: string[];
  sanOthers: number;
  isCa: boolean;
  keyUsageByte: number | undefined;
  ekuClientAuth: boolean | undefined;
  authorityKeyId: Buffer | undefined;
  subjectKeyId: Buffer | undefined;
}

function fields(der: Buffer): CertificateFields | undefined {
  const cert = readTlv(der, 0);
  if (!cert || cert.tag !== 0x30) return undefined;
  const tbs = readTlv(der, cert.start, cert.end);
  if (!tbs || tbs.tag !== 0x30) return undefined;
  const parts = children(der, tbs);
  if (!parts) return undefined;
  let i = parts[0]?.tag === 0xa0 ? 1 : 0; // [0] version
  const serial = parts[i++];
  i++; // signature AlgorithmIdentifier
  const issuer = parts[i++];
  const validity = parts[i++];
  const subject = parts[i++];
  if (!serial || serial.tag !== 0x02 || !issuer || !validity || !subject) return undefined;
  const times = children(der, validity);
  const notBefore = times?.[0] && readTime(der, times[0]);
  const notAfter = times?.[1] && readTime(der, times[1]);
  if (notBefore === undefined || notAfter === undefined) return undefined;

  const commonNames: string[] = [];
  for (const rdn of children(der, subject) ?? []) {
    for (const atv of children(der, rdn) ?? []) {
      const [oid, value] = children(der, atv) ?? [];
      if (oid && value && der.subarray(oid.offset, oid.end).equals(OID.commonName)) commonNames.push(der.toString('utf8', value.start, value.end));
    }
  }

  const f: CertificateFields = {
    serialHex: der.toString('hex', serial.start, serial.end),
    issuerDer: der.subarray(issuer.offset, issuer.end),
    subjectDer: der.subarray(subject.offset, subject.end),
    notBefore,
    notAfter,
    commonNames,
    sanUris: [],
    sanOthers: 0,
    isCa: false,
    keyUsageByte: undefined,
    ekuClientAuth: undefined,
    authorityKeyId: undefined,
    subjectKeyId: undefined,
  };
  const extsField = parts.find((p) => p.tag === 0xa3);
  const exts = extsField ? readTlv(der, extsField.start, extsField.end) : undefined;
  for (const ext of exts ? (children(der, exts) ?? []) : []) {
    const items = children(der, ext);
    const oid = items?.[0];
    const value = items?.at(-1);
    if (!oid || !value || value.tag !== 0x04) continue;
    const id = der.subarray(oid.offset, oid.end);
    const inner = readTlv(der, value.start, value.end);
    if (!inner) continue;
    if (id.equals(OID.subjectAltName)) {
      for (const name of children(der, inner) ?? []) {
        if (name.tag === 0x86) f.sanUris.push(der.toString('latin1', name.start, name.end)); // [6] uniformResourceIdentifier
        else f.sanOthers++;
      }
    } else if (id.equals(OID.keyUsage)) {
      if (inner.tag === 0x03 && inner.end - inner.start >= 2) f.keyUsageByte = der[inner.start + 1];
    } else if (id.equals(OID.extKeyUsage)) {
      f.ekuClientAuth = (children(der, inner) ?? []).some((p) => der.subarray(p.offset, p.end).equals(OID.clientAuth));
    } else if (id.equals(OID.basicConstraints)) {
      const first = children(der, inner)?.[0];
      f.isCa = first?.tag === 0x01 && der[first.start] !== 0x00;
    } else if (id.equals(OID.authorityKeyIdentifier)) {
      const keyId = children(der, inner)?.find((p) => p.tag === 0x80);
      if (keyId) f.authorityKeyId = der.subarray(keyId.start, keyId.end);
    } else if (id.equals(OID.subjectKeyIdentifier)) {
      if (inner.tag === 0x04) f.subjectKeyId = der.subarray(inner.start, inner.end);
    }
  }
  return f;
}

export interface IssuerPin {
  subjectDer: Buffer;
  keyId: Buffer | undefined;
}

export function issuerPinOf(certificate: Buffer | string): IssuerPin {
  const der = new X509Certificate(certificate).raw;
  const f = fields(der);
  if (!f) throw new Error('issuing CA certificate could not be read');
  return { subjectDer: Buffer.from(f.subjectDer), keyId: f.subjectKeyId ? Buffer.from(f.subjectKeyId) : undefined };
}

/**
 * Applies the device profile to a certificate the TLS layer accepted (DESIGN.md §2, RELIABILITY.md §1.2): issued by
 * our issuing CA (the TLS layer trusts the root, so this pins the one issuing CA by name and key id), not a CA, EKU
 * clientAuth, KU digitalSignature, and CN = id = SAN URI id, exactly one of each.
 */
export function identityFromCertificate(der: Buffer, issuer?: IssuerPin): PeerIdentityResult {
  const f = fields(der);
  if (!f) return { ok: false, reason: 'unparseable certificate' };
  if (issuer) {
    if (!f.issuerDer.equals(issuer.subjectDer)) return { ok: false, reason: 'not issued by the issuing CA' };
    if (issuer.keyId && f.authorityKeyId && !f.authorityKeyId.equals(issuer.keyId)) return { ok: false, reason: 'not issued by the issuing CA key' };
  }
  if (f.isCa) return { ok: false, reason: 'a CA certificate is not a device' };
  if (f.ekuClientAuth !== true) return { ok: false, reason: 'EKU lacks clientAuth' }; // RFC 5280 §4.2.1.12
  if (f.keyUsageByte === undefined || (f.keyUsageByte & 0x80) === 0) return { ok: false, reason: 'KU lacks digitalSignature' }; // §4.2.1.3
  const cn = f.commonNames.length === 1 ? f.commonNames[0] : undefined;
  if (!isValidDeviceId(cn)) return { ok: false, reason: 'subject CN is not one valid device id' };
  const ids = f.sanUris.map((u) => deviceIdFromUri(u)).filter((id): id is string => id !== undefined);
  if (f.sanUris.length !== 1 || ids.length !== 1) return { ok: false, reason: 'SAN must hold exactly one urn:enrolld:device URI' };
  if (ids[0] !== cn) return { ok: false, reason: 'subject CN and SAN URI name different devices' };
  return { ok: true, identity: { deviceId: cn, serial: normalizeSerial(f.serialHex), notBefore: f.notBefore, notAfter: f.notAfter } };
}

export interface PeerIdentityReader {
  read(socket: TLSSocket): PeerIdentityResult;
  size(): number;
}

/** Identity reader with a bounded cache keyed by certificate hash (insertion-order eviction). */
export function createPeerIdentityReader(options: { issuer?: Buffer | string | undefined; maxEntries?: number } = {}): PeerIdentityReader {
  const maxEntries = options.maxEntries ?? 50_000;
  const issuer = options.issuer === undefined ? undefined : issuerPinOf(options.issuer);
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
