// A test PKI generated at run time (never committed certificates: they expire): root → issuing CA → device and server
// certificates, plus the odd certificates the real CA would never issue (expired, other CA, CA:TRUE leaf,
// serverAuth-only, no digitalSignature, unknown critical extension …) for the broker's negative tests.
import 'reflect-metadata';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import type { CrlSpec } from '@enrolld/core/ca/types.js';
import { canonicalSerial } from '@enrolld/protocol';
import { OID } from '@enrolld/core/ca/oids.js';
import { profileExtensionValue } from '@enrolld/core/ca/device-profile.js';

const crypto = webcrypto;
x509.cryptoProvider.set(crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export interface KeyPem {
  keys: webcrypto.CryptoKeyPair;
  keyPem: string;
}

export interface IssuedCert extends KeyPem {
  cert: x509.X509Certificate;
  certPem: string;
  der: Buffer;
  /** Lowercase hex as the store keeps it. */
  serial: string;
}

export interface DeviceCert extends IssuedCert {
  deviceId: string;
  /** What a real device sends: its certificate, then the issuing CA. */
  chainPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface TestCa extends IssuedCert {
  name: string;
  issue(options: LeafOptions): Promise<IssuedCert>;
  signCrl(spec: CrlSpec): Promise<Buffer>;
}

export interface LeafOptions {
  subject: string;
  sanUris?: string[];
  sanDns?: string[];
  sanIps?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Extended key usages; `null` leaves the extension out. */
  eku?: string[] | null;
  /** KeyUsage flags; `null` leaves the extension out. */
  keyUsage?: number | null;
  isCa?: boolean;
  unknownCriticalExtension?: boolean;
  /** The enrolldProfile extension (docs/architecture.md §5); absent: a certificate of the built-in `device` profile. */
  profile?: { name: string; version: number; group?: string };
  serial?: string;
  keys?: webcrypto.CryptoKeyPair;
}

export async function newKeys(): Promise<KeyPem> {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`;
  return { keys, keyPem };
}

/** 128 random bits, positive (top bit clear), canonical hex: the shape of the CA's own serials (docs/architecture.md §5). */
export function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

function toIssued(cert: x509.X509Certificate, kp: KeyPem): IssuedCert {
  return { ...kp, cert, certPem: cert.toString('pem') + '\n', der: Buffer.from(cert.rawData), serial: canonicalSerial(cert.serialNumber) ?? cert.serialNumber.toLowerCase() };
}

async function makeCa(name: string, cert: x509.X509Certificate, kp: KeyPem): Promise<TestCa> {
  const issued = toIssued(cert, kp);
  return {
    ...issued,
    name,
    async issue(options) {
      const leafKeys = options.keys ? { keys: options.keys, keyPem: '' } : await newKeys();
      const now = Date.now();
      const extensions: x509.Extension[] = [];
      extensions.push(new x509.BasicConstraintsExtension(options.isCa ?? false, undefined, true));
      if (options.keyUsage !== null) {
        const usage = options.keyUsage ?? (options.isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature);
        extensions.push(new x509.KeyUsagesExtension(usage, true));
      }
      if (options.eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension(options.eku ?? [CLIENT_AUTH]));
      const names: x509.JsonGeneralName[] = [
        ...(options.sanUris ?? []).map((value) => ({ type: 'url' as const, value })),
        ...(options.sanDns ?? []).map((value) => ({ type: 'dns' as const, value })),
        ...(options.sanIps ?? []).map((value) => ({ type: 'ip' as const, value })),
      ];
      if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
      extensions.push(await x509.SubjectKeyIdentifierExtension.create(leafKeys.keys.publicKey));
      extensions.push(await x509.AuthorityKeyIdentifierExtension.create(cert));
      // A private-arc OID no verifier knows: RFC 5280 §4.2 says reject the certificate when it is critical.
      if (options.unknownCriticalExtension) extensions.push(new x509.Extension('1.3.6.1.4.1.55555.1.1', true, new Uint8Array([0x05, 0x00])));
      if (options.profile) extensions.push(new x509.Extension(OID.enrolldProfile, false, profileExtensionValue(options.profile)));
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: options.serial ?? randomSerial(),
        subject: options.subject,
        issuer: cert.subject,
        notBefore: options.notBefore ?? new Date(now - 60_000),
        notAfter: options.notAfter ?? new Date(now + 24 * 3600_000),
        publicKey: leafKeys.keys.publicKey,
        signingKey: kp.keys.privateKey,
        signingAlgorithm: SIGN,
        extensions,
      });
      return toIssued(leaf, leafKeys);
    },
    async signCrl(spec) {
      const crl = await x509.X509CrlGenerator.create({
        issuer: cert.subject,
        thisUpdate: spec.thisUpdate,
        nextUpdate: spec.nextUpdate,
        signingKey: kp.keys.privateKey,
        signingAlgorithm: SIGN,
        extensions: [
          await x509.AuthorityKeyIdentifierExtension.create(cert),
          // RFC 5280 §5.2.3 cRLNumber: INTEGER, DER-encoded by hand (non-negative, minimal).
          new x509.Extension('2.5.29.20', false, derInteger(spec.crlNumber)),
        ],
        entries: spec.entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt, reason: e.reasonCode as x509.X509CrlReason })),
      });
      return Buffer.from(crl.rawData);
    },
  };
}

function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  const body = Buffer.from(hex, 'hex');
  return new Uint8Array([0x02, body.length, ...body]);
}

export async function createRootCa(name: string, options: { notBefore?: Date; notAfter?: Date } = {}): Promise<TestCa> {
  const kp = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${name}`,
    notBefore: options.notBefore ?? new Date(now - 3600_000),
    notAfter: options.notAfter ?? new Date(now + 30 * 24 * 3600_000),
    keys: kp.keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(kp.keys.publicKey),
    ],
  });
  return makeCa(name, cert, kp);
}

/** Wraps an issued CA:TRUE certificate as a CA that can issue in turn. */
export async function asCa(name: string, issued: IssuedCert): Promise<TestCa> {
  return makeCa(name, issued.cert, issued);
}

export async function createIntermediateCa(parent: TestCa, name: string, options: { pathLength?: number } = {}): Promise<TestCa> {
  const kp = await newKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${name}`,
    issuer: parent.cert.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 30 * 24 * 3600_000),
    publicKey: kp.keys.publicKey,
    signingKey: parent.keys.privateKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, options.pathLength ?? 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(kp.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(parent.cert),
    ],
  });
  return makeCa(name, cert, kp);
}

export interface DeviceOptions extends Omit<LeafOptions, 'subject'> {
  /** Subject CN; defaults to the device id. */
  cn?: string;
}

export interface TestPki {
  root: TestCa;
  issuing: TestCa;
  /** Issuing CA then root (PEM): the broker's `ca` and what a device trusts. */
  caChainPem: string;
  /** The root's CRL over the issuing CA (empty): Node checks CRLs for every CA in the chain once one is set. */
  rootArlPem: string;
  server: IssuedCert & { chainPem: string };
  device(deviceId: string, options?: DeviceOptions): Promise<DeviceCert>;
  /** A device cert from any CA (for the trust-anchor tests). */
  deviceFrom(ca: TestCa, deviceId: string, options?: DeviceOptions): Promise<DeviceCert>;
}

export function deviceIdFor(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function createTestPki(options: { name?: string } = {}): Promise<TestPki> {
  const tag = options.name ?? randomBytes(3).toString('hex');
  const root = await createRootCa(`enrolld test root ${tag}`);
  const issuing = await createIntermediateCa(root, `enrolld test issuing ${tag}`);
  const now = new Date();
  const arl = await root.signCrl({ entries: [], crlNumber: 1n, thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + 30 * 24 * 3600_000) });
  const serverCert = await issuing.issue({
    subject: 'CN=localhost',
    sanDns: ['localhost'],
    sanIps: ['127.0.0.1'],
    eku: [SERVER_AUTH],
  });

  async function deviceFrom(ca: TestCa, deviceId: string, o: DeviceOptions = {}): Promise<DeviceCert> {
    const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
    const notAfter = o.notAfter ?? new Date(Date.now() + 24 * 3600_000);
    const issued = await ca.issue({
      ...o,
      subject: `CN=${o.cn ?? deviceId}`,
      sanUris: o.sanUris ?? [`urn:enrolld:device:${deviceId}`],
      notBefore,
      notAfter,
    });
    return { ...issued, deviceId, chainPem: issued.certPem + ca.certPem, notBefore, notAfter };
  }

  return {
    root,
    issuing,
    caChainPem: issuing.certPem + root.certPem,
    rootArlPem: pemOf('X509 CRL', arl),
    server: { ...serverCert, chainPem: serverCert.certPem + issuing.certPem },
    device: (deviceId, o) => deviceFrom(issuing, deviceId, o),
    deviceFrom,
  };
}

export function pemOf(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export { CLIENT_AUTH, SERVER_AUTH };
export const KeyUsage = x509.KeyUsageFlags;
