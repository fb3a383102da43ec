import 'reflect-metadata'; // @peculiar/x509 2.x needs it loaded first
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fromPem, toPem } from './der.js';
import { createIssuingCa, signServerCertificateWithKey } from './issuing-ca.js';
import { spkiKeyBits } from './key-policy.js';
import { generateSerial, serialHex } from './serial.js';
import { keyIdentifierOf } from './x509-encoding.js';

// CA material: created once (`enrolld ca init` or first start, and per environment by `enrolld env create`), off the
// hot path, so it uses @peculiar/x509 for clarity. Root: ECDSA P-256, 10 years. Issuing intermediate: P-256, 5 years,
// pathLen 0. TLS server certificate for the API and broker, issued by the intermediate (signed by signer.ts, which
// holds that key).

/** PEMs of a new CA hierarchy. Private keys are PKCS#8 PEM: write them with mode 0600 and never log them. */
export interface CaMaterial {
  rootCertPem: string;
  rootKeyPem: string;
  issuingCertPem: string;
  issuingKeyPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** Server certificate then issuing CA: what the TLS server sends. */
  serverChainPem: string;
}

/** A re-issued TLS server certificate and its fresh key (PKCS#8 PEM). */
export interface ServerCertificateMaterial {
  serverCertPem: string;
  serverKeyPem: string;
  /** Server certificate then issuing CA. */
  serverChainPem: string;
}

export interface CreateCaMaterialOptions {
  now: Date;
  /** Extra DNS names / IP addresses for the server certificate, besides localhost, 127.0.0.1 and ::1. */
  serverNames: readonly string[];
  /** Organization shown in the CA names; default "enrolld". */
  organization?: string;
}

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Backdate CA certificates by an hour so device backdates (clock skew) never predate their issuer. */
const CA_BACKDATE_MS = 3600 * 1000;

function addYears(date: Date, years: number): Date {
  const d = new Date(date.getTime());
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
function keyIdentifierHex(spkiDer: Uint8Array): string {
  return keyIdentifierOf(spkiKeyBits(spkiDer)).toString('hex');
}

async function spkiOf(key: webcrypto.CryptoKey): Promise<Buffer> {
  return Buffer.from(await globalThis.crypto.subtle.exportKey('spki', key));
}

async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  return toPem('PRIVATE KEY', Buffer.from(await globalThis.crypto.subtle.exportKey('pkcs8', key)));
}

/** A CA certificate and its fresh P-256 key (PKCS#8 PEM: write it with mode 0600 and never log it). */
export interface CaKeyPair {
  certPem: string;
  keyPem: string;
}

/** The names of one environment's CAs: the shared ones for `default`, tagged with the environment otherwise. */
function caNames(org: string, environment: string | undefined): { root: string; issuing: string } {
  const tag = environment === undefined ? '' : ` ${environment}`;
  return { root: `CN=${org}${tag} root CA, O=${org}`, issuing: `CN=${org}${tag} issuing CA 1, O=${org}` };
}

function checkedOrganization(organization: string | undefined): string {
  const org = organization ?? 'enrolld';
  if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(org)) throw new Error('organization must be 1–64 of [A-Za-z0-9 ._-]');
  return org;
}

function caStart(now: Date): Date {
  return new Date(Math.floor(now.getTime() / 1000) * 1000 - CA_BACKDATE_MS);
}

async function importCaKey(keyPem: string): Promise<webcrypto.CryptoKey> {
  const der = fromPem(keyPem, 'PRIVATE KEY');
  return globalThis.crypto.subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign']);
}

export interface RootCaOptions {
  now: Date;
  organization?: string;
  /** Tags the root's name with an environment that has a root of its own (`--own-root`). */
  environment?: string;
}

/** A self-signed root CA, 10 years. */
export async function createRootCaMaterial(options: RootCaOptions): Promise<CaKeyPair> {
  const webcrypto = globalThis.crypto;
  // Native WebCrypto: @peculiar/webcrypto is 6–10× slower on Node 20.
  x509.cryptoProvider.set(webcrypto);
  const org = checkedOrganization(options.organization);
  const start = caStart(options.now);
  const rootKeys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialHex(generateSerial()),
      name: caNames(org, options.environment).root,
      notBefore: start,
      notAfter: addYears(start, 10),
      keys: rootKeys,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true), // RFC 5280 §4.2.1.9: critical in CA certs
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(keyIdentifierHex(await spkiOf(rootKeys.publicKey))),
      ],
    },
    webcrypto,
  );
  return { certPem: root.toString('pem') + '\n', keyPem: await pkcs8Pem(rootKeys.privateKey) };
}

export interface IssuingCaOptions {
  now: Date;
  /** The root that signs it: its certificate and its key as read from its 0600 file. */
  root: CaKeyPair;
  organization?: string;
  /** Tags the issuing CA's name with its environment, so each environment's CA has a name of its own. */
  environment?: string;
}

/** An issuing intermediate under `root`: 5 years (never past the root), pathLen 0, checked against the root before it is returned. */
export async function createIssuingCaMaterial(options: IssuingCaOptions): Promise<CaKeyPair> {
  const webcrypto = globalThis.crypto;
  x509.cryptoProvider.set(webcrypto);
  const org = checkedOrganization(options.organization);
  const start = caStart(options.now);
  const root = new x509.X509Certificate(options.root.certPem);
  const rootKeyId = root.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (rootKeyId === undefined) throw new Error('the root certificate has no subject key identifier');
  const notAfter = addYears(start, 5);
  const issuingKeys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const issuing = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex(generateSerial()),
      subject: caNames(org, options.environment).issuing,
      issuer: root.subject,
      notBefore: start,
      notAfter: notAfter.getTime() < root.notAfter.getTime() ? notAfter : root.notAfter,
      publicKey: issuingKeys.publicKey,
      signingKey: await importCaKey(options.root.keyPem),
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true), // pathLen 0: issues only end-entity certificates
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(keyIdentifierHex(await spkiOf(issuingKeys.publicKey))),
        new x509.AuthorityKeyIdentifierExtension(rootKeyId),
      ],
    },
    webcrypto,
  );
  const material = { certPem: issuing.toString('pem') + '\n', keyPem: await pkcs8Pem(issuingKeys.privateKey) };
  // Checks the new hierarchy end to end (key matches, root signed the intermediate) before anything is returned.
  createIssuingCa({ issuingCertificatePem: material.certPem, issuingPrivateKey: createPrivateKey(material.keyPem), rootCertificatePem: options.root.certPem });
  return material;
}

/** Creates a root CA, an issuing intermediate and a TLS server certificate. All keys are fresh P-256 keys. */
export async function createCaMaterial(options: CreateCaMaterialOptions): Promise<CaMaterial> {
  const root = await createRootCaMaterial(options);
  const issuing = await createIssuingCaMaterial({ ...options, root });
  const server = await issueServerCertificate({ now: options.now, serverNames: options.serverNames, issuingCertificatePem: issuing.certPem, issuingKeyPem: issuing.keyPem });
  return {
    rootCertPem: root.certPem,
    rootKeyPem: root.keyPem,
    issuingCertPem: issuing.certPem,
    issuingKeyPem: issuing.keyPem,
    ...server,
  };
}

export interface IssueServerCertificateOptions {
  now: Date;
  /** Extra DNS names / IP addresses, besides localhost, 127.0.0.1 and ::1. */
  serverNames: readonly string[];
  issuingCertificatePem: string;
  /** The issuing CA key: a loaded KeyObject, or the PKCS#8 PEM as read from its file. */
  issuingPrivateKey?: KeyObject;
  issuingKeyPem?: string;
  /** Default 365 days, clamped to the issuing CA's notAfter. */
  lifetimeSeconds?: number;
}

/**
 * A fresh P-256 key and a TLS server certificate (serverAuth, SANs localhost, 127.0.0.1, ::1 + serverNames),
 * signed by the issuing CA's signer (signer.ts). Use it again when the configured names change or the
 * certificate nears expiry.
 */
export async function issueServerCertificate(options: IssueServerCertificateOptions): Promise<ServerCertificateMaterial> {
  const issuingPrivateKey =
    options.issuingPrivateKey ?? (options.issuingKeyPem !== undefined ? createPrivateKey(options.issuingKeyPem) : undefined);
  if (!issuingPrivateKey) throw new Error('issueServerCertificate needs issuingPrivateKey or issuingKeyPem');
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const der = signServerCertificateWithKey({
    issuingCertificatePem: options.issuingCertificatePem,
    issuingPrivateKey,
    serverNames: options.serverNames,
    spkiDer: publicKey.export({ format: 'der', type: 'spki' }),
    now: options.now,
    ...(options.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: options.lifetimeSeconds }),
  });
  const serverCertPem = toPem('CERTIFICATE', der);
  return {
    serverCertPem,
    serverKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    serverChainPem: serverCertPem + toPem('CERTIFICATE', fromPem(options.issuingCertificatePem, 'CERTIFICATE')),
  };
}
