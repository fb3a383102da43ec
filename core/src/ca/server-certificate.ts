import { derExplicit, derImplicit, derOctetString, derOid, derSequence, derSet, derTime, derUtf8String, TAG_INTEGER, tlv } from './der.js';
import type { IssuerFacts } from './issuer.js';
import { spkiKeyBits } from './key-policy.js';
import { OID } from './oids.js';
import { generateSerial } from './serial.js';
import {
  authorityKeyIdentifierExtension,
  ECDSA_SHA256,
  EXT_BASIC_CONSTRAINTS_LEAF,
  EXT_KEY_USAGE_DIGITAL_SIGNATURE,
  extension,
  keyIdentifierOf,
  OID_CN,
  VERSION_V3,
} from './x509-encoding.js';

// The TLS server certificate of the API and the broker (serverAuth, RFC 5280 §4.2.1.12), issued by the issuing CA.
// This module encodes the TBSCertificate; it holds no key (signer.ts signs).

export interface ServerCertificateRequest {
  /** DNS names and IP addresses; localhost, 127.0.0.1 and ::1 are always included. */
  serverNames: readonly string[];
  /** SubjectPublicKeyInfo of the server's key. */
  spkiDer: Buffer;
  now: Date;
  /** Default 365 days; clamped to the issuing CA's notAfter. */
  lifetimeSeconds?: number;
}

const EXT_EKU_SERVER_AUTH = extension(OID.extKeyUsage, false, derSequence(derOid(OID.kpServerAuth)));

export function encodeServerCertificateTbs(request: ServerCertificateRequest, issuer: IssuerFacts): Buffer {
  const nowMs = Math.floor(request.now.getTime() / 1000) * 1000;
  const lifetime = request.lifetimeSeconds ?? 365 * 24 * 3600;
  const notBefore = new Date(nowMs - 3600 * 1000);
  const notAfter = new Date(Math.min(nowMs + lifetime * 1000 - 1000, issuer.notAfter.getTime()));
  const { dns, ips } = splitServerNames(request.serverNames);
  const keyBits = spkiKeyBits(request.spkiDer);
  const commonName = dns.find((n) => n !== 'localhost') ?? 'localhost';
  const generalNames = [...dns.map((n) => derImplicit(2, Buffer.from(n, 'ascii'))), ...ips.map((b) => derImplicit(7, b))];
  return derSequence(
    VERSION_V3,
    tlv(TAG_INTEGER, generateSerial()),
    ECDSA_SHA256,
    issuer.name,
    derSequence(derTime(notBefore), derTime(notAfter)),
    derSequence(derSet(derSequence(OID_CN, derUtf8String(commonName)))),
    request.spkiDer,
    derExplicit(
      3,
      derSequence(
        EXT_BASIC_CONSTRAINTS_LEAF,
        EXT_KEY_USAGE_DIGITAL_SIGNATURE,
        EXT_EKU_SERVER_AUTH,
        extension(OID.subjectKeyIdentifier, false, derOctetString(keyIdentifierOf(keyBits))),
        authorityKeyIdentifierExtension(issuer.keyIdentifier),
        extension(OID.subjectAltName, false, derSequence(...generalNames)),
      ),
    ),
  );
}

// ─────────────── server names (RFC 5280 §4.2.1.6 dNSName and iPAddress) ───────────────

const DNS_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

function splitServerNames(names: readonly string[]): { dns: string[]; ips: Buffer[] } {
  const dns = new Set<string>(['localhost']);
  const ipText = new Set<string>();
  const ips: Buffer[] = [];
  const addIp = (bytes: Buffer): void => {
    const key = bytes.toString('hex');
    if (!ipText.has(key)) {
      ipText.add(key);
      ips.push(bytes);
    }
  };
  addIp(Buffer.from([127, 0, 0, 1]));
  addIp(parseIpv6('::1')!);
  for (const raw of names) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    const v4 = parseIpv4(name);
    const v6 = v4 ? undefined : parseIpv6(name);
    if (v4) addIp(v4);
    else if (v6) addIp(v6);
    else if (name.length <= 253 && name.split('.').every((l) => DNS_LABEL.test(l))) dns.add(name);
    else throw new Error(`server name ${JSON.stringify(raw)} is neither a DNS name nor an IP address`);
  }
  return { dns: [...dns], ips };
}

function parseIpv4(s: string): Buffer | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? Buffer.from(bytes) : undefined;
}

function parseIpv6(s: string): Buffer | undefined {
  if (!/^[0-9a-f:]+$/.test(s) || !s.includes(':')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined): number[] | undefined => {
    if (!part) return [];
    const groups = part.split(':');
    if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
    return groups.map((g) => parseInt(g, 16));
  };
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
