// Reads the device identity from the client certificate of a TLS connection (the device profile,
// docs/architecture.md).
//
// Performance: building a getPeerCertificate() object costs ~110 µs per CONNECT, getPeerX509Certificate() ~200 µs
// when the client sends its chain, and any X509Certificate parse pays OpenSSL 3.0's decode (~276 µs). Instead we
// take the peer certificate DER out of the TLS session (SSL_SESSION ASN.1, field `peer [3]`, a few µs; present for
// resumed sessions too, which is what the CONNECT-time revocation check needs), read it with the CA's certificate
// reader (@enrolld/core/ca/certificate-reader.ts, a few µs), and cache the result by the certificate's SHA-256. Each socket
// is read once: the TLS listener's issuer pin reads it after the handshake and CONNECT gets the same result.
//
// The TLS listener has already verified the chain and signatures (tls-listener.ts: only a certificate our issuing CA
// signed whose sole fault is its validity period gets past it unverified in time, and admission refuses that one), so
// this module only reads fields and applies the device profile; it never trusts a certificate the handshake did not.
import { X509Certificate, hash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { BUILTIN_PROFILES, identityFromUri, isValidDeviceId, isValidGroup } from '@enrolld/protocol';
import type { IdentityKind } from '@enrolld/protocol';
import { readCertificateIdentity, KeyUsageBit } from '@enrolld/core/ca/certificate-reader.js';
import type { CertificateIdentity } from '@enrolld/core/ca/certificate-reader.js';
import { DerError, readTlv, TAG_SEQUENCE } from '@enrolld/core/ca/der.js';
import { oidHex } from '@enrolld/core/ca/oids.js';
import { normalizeSerial } from '@enrolld/core/revocation/serial.js';

export interface PeerIdentity {
  /** Device, service or admin, from the SAN URI the CA wrote from the record (admission refuses admins). */
  kind: IdentityKind;
  /** The identity's id: a device id or a service name. */
  deviceId: string;
  /** The profile named in the certificate (certificates issued before profiles existed are `device`). */
  profile: string;
  profileVersion: number;
  /** The device group named in the certificate (the ACL's `{group}`); undefined when it names none. */
  group: string | undefined;
  /** Canonical serial: lowercase minimal DER hex (@enrolld/protocol canonicalSerial). */
  serial: string;
  notBefore: number;
  notAfter: number;
}

/**
 * `otherIssuer`: no certificate the pinned issuing CA issued (another name or key id, not readable as a certificate, or
 * none at all): the TLS listener closes such a connection before any MQTT byte (tls-listener.ts).
 */
export type PeerIdentityResult = { ok: true; identity: PeerIdentity } | { ok: false; reason: string; otherIssuer?: true };

const TAG_SESSION_PEER = 0xa3;

/**
 * The peer certificate DER inside an OpenSSL SSL_SESSION encoding (ssl/ssl_asn1.c: SEQUENCE { version, sslVersion,
 * cipher, sessionId, masterKey, [1] time, [2] timeout, [3] peer Certificate, … }).
 */
export function peerCertificateFromSession(session: Buffer): Buffer | undefined {
  try {
    const top = readTlv(session, 0, session.length);
    if (top.tag !== TAG_SEQUENCE) return undefined;
    for (let pos = top.valueStart; pos < top.end; ) {
      const field = readTlv(session, pos, top.end);
      if (field.tag === TAG_SESSION_PEER) {
        const cert = readTlv(session, field.valueStart, field.end);
        return cert.tag === TAG_SEQUENCE ? session.subarray(cert.start, cert.end) : undefined;
      }
      pos = field.end;
    }
    return undefined;
  } catch (error) {
    if (error instanceof DerError) return undefined;
    throw error;
  }
}

export interface IssuerPin {
  subjectDer: Buffer;
  keyId: Buffer | undefined;
}

export function issuerPinOf(certificate: Buffer | string): IssuerPin {
  const issuing = readCertificateIdentity(new X509Certificate(certificate).raw);
  return {
    subjectDer: Buffer.from(issuing.subjectDer),
    keyId: issuing.subjectKeyIdentifier ? Buffer.from(issuing.subjectKeyIdentifier) : undefined,
  };
}

const CLIENT_AUTH = oidHex('kpClientAuth');

/** Why a certificate does not name the pinned issuing CA (by name, and by key id when both carry one), if it does not. */
function otherIssuer(f: Pick<CertificateIdentity, 'issuerDer' | 'authorityKeyIdentifier'>, issuer: IssuerPin): string | undefined {
  if (!f.issuerDer.equals(issuer.subjectDer)) return 'not issued by the issuing CA';
  if (issuer.keyId && f.authorityKeyIdentifier && !f.authorityKeyIdentifier.equals(issuer.keyId)) return 'not issued by the issuing CA key';
  return undefined;
}

/**
 * Applies the device profile to a certificate the TLS layer accepted (docs/architecture.md): issued by our issuing
 * CA (the TLS layer trusts the root, so this pins the one issuing CA by name and key id), not a CA, EKU clientAuth,
 * KU digitalSignature, and CN = id = SAN URI id, exactly one of each.
 */
export function identityFromCertificate(der: Buffer, issuer?: IssuerPin): PeerIdentityResult {
  let f: CertificateIdentity;
  try {
    f = readCertificateIdentity(der);
  } catch (error) {
    if (error instanceof DerError) return { ok: false, reason: `unparseable certificate: ${error.message}`, otherIssuer: true };
    throw error;
  }
  const foreign = issuer ? otherIssuer(f, issuer) : undefined;
  if (foreign !== undefined) return { ok: false, reason: foreign, otherIssuer: true };
  if (f.isCa) return { ok: false, reason: 'a CA certificate is not a device' };
  if (!f.extendedKeyUsage?.includes(CLIENT_AUTH)) return { ok: false, reason: 'EKU lacks clientAuth' }; // RFC 5280 §4.2.1.12
  if (f.keyUsage === undefined || (f.keyUsage & KeyUsageBit.digitalSignature) === 0) return { ok: false, reason: 'KU lacks digitalSignature' }; // §4.2.1.3
  const cn = f.commonNames.length === 1 ? f.commonNames[0] : undefined;
  if (!isValidDeviceId(cn)) return { ok: false, reason: 'subject CN is not one valid id' };
  const san = f.sanUris.length === 1 ? identityFromUri(f.sanUris[0]!) : undefined;
  if (san === undefined) return { ok: false, reason: 'SAN must hold exactly one urn:enrolld:<device|service|admin>:<id> URI' };
  if (san.id !== cn) return { ok: false, reason: 'subject CN and SAN URI name different identities' };
  if (!f.profile && san.kind !== 'device') return { ok: false, reason: `a ${san.kind} certificate must name its profile` };
  const profile = f.profile ?? { name: BUILTIN_PROFILES.device, version: 1 };
  if (profile.group !== undefined && !isValidGroup(profile.group)) return { ok: false, reason: 'the certificate names an invalid group' };
  return {
    ok: true,
    identity: {
      kind: san.kind,
      deviceId: cn,
      profile: profile.name,
      profileVersion: profile.version,
      group: profile.group,
      serial: normalizeSerial(f.serialHex),
      notBefore: f.notBefore.getTime(),
      notAfter: f.notAfter.getTime(),
    },
  };
}

export interface PeerIdentityReader {
  /**
   * The identity of a socket's client certificate, read once per socket: the TLS listener reads it right after the
   * handshake (the issuer pin) and CONNECT gets the same result without touching the certificate again.
   */
  read(socket: TLSSocket): PeerIdentityResult;
  size(): number;
}

/**
 * The client certificate DER of a TLS socket: from its session (a few µs, present for resumed sessions too), or the
 * slow, sure getPeerCertificate() when the session does not hold it (not a TLS socket we know, or an OpenSSL that
 * encodes sessions differently).
 */
export function peerCertificateOf(socket: TLSSocket): Buffer | undefined {
  const session = typeof socket.getSession === 'function' ? socket.getSession() : undefined;
  const der = session ? peerCertificateFromSession(session) : undefined;
  if (der) return der;
  const raw = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false)?.raw : undefined;
  return raw && raw.length > 0 ? raw : undefined;
}

/** Identity reader with a bounded cache keyed by certificate hash (insertion-order eviction). */
export function createPeerIdentityReader(options: { issuer?: Buffer | string | undefined; maxEntries?: number } = {}): PeerIdentityReader {
  const maxEntries = options.maxEntries ?? 50_000;
  const issuer = options.issuer === undefined ? undefined : issuerPinOf(options.issuer);
  const cache = new Map<string, PeerIdentityResult>();
  const bySocket = new WeakMap<TLSSocket, PeerIdentityResult>();
  function readCertificate(socket: TLSSocket): PeerIdentityResult {
    const der = peerCertificateOf(socket);
    if (!der) return { ok: false, reason: 'no client certificate', otherIssuer: true };
    // One-shot hash: one call into C++, no Hash object per CONNECT.
    const key = hash('sha256', der, 'base64');
    const hit = cache.get(key);
    if (hit) return hit;
    const result = identityFromCertificate(der, issuer);
    if (cache.size >= maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(key, result);
    return result;
  }
  return {
    read(socket) {
      let result = bySocket.get(socket);
      if (result === undefined) {
        result = readCertificate(socket);
        bySocket.set(socket, result);
      }
      return result;
    },
    size: () => cache.size,
  };
}
