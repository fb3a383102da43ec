import 'reflect-metadata'; // @peculiar/x509 2.x needs it loaded first
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { fromPem, toPem } from './der.js';
import { createIssuingCa, signServerCertificateWithKey } from './issuing-ca.js';
import { spkiKeyBits } from './key-policy.js';
import { generateSerial, serialHex } from './serial.js';
import { keyIdentifierOf } from './x509-encoding.js';

// CA material: created once (`enrolld ca init` or first start), off the hot path, so it uses @peculiar/x509 for
// clarity. Root: ECDSA P-256, 10 years. Issuing intermediate: P-256, 5 years, pathLen 0. TLS server certificate
// for the API and broker, issued by the intermediate (signed by signer.ts, which holds that key).

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

/** Creates a root CA, an issuing intermediate and a TLS server certificate. All keys are fresh P-256 keys. */
export async function createCaMaterial(options: CreateCaMaterialOptions): Promise<CaMaterial> {
  const webcrypto = globalThis.crypto;
  // Native WebCrypto: @peculiar/webcrypto is 6–10× slower on Node 20.
  x509.cryptoProvider.set(webcrypto);
  const org = options.organization ?? 'enrolld';
  if (!/^[A-Za-z0-9 ._-]{1,64}$/.test(org)) throw new Error('organization must be 1–64 of [A-Za-z0-9 ._-]');
  const start = new Date(Math.floor(options.now.getTime() / 1000) * 1000 - CA_BACKDATE_MS);

  const rootKeys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const rootKeyId = keyIdentifierHex(await spkiOf(rootKeys.publicKey));
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serialHex(generateSerial()),
      name: `CN=${org} root CA, O=${org}`,
      notBefore: start,
      notAfter: addYears(start, 10),
      keys: rootKeys,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true), // RFC 5280 §4.2.1.9: critical in CA certs
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(rootKeyId),
      ],
    },
    webcrypto,
  );

  const issuingKeys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const issuingSpki = await spkiOf(issuingKeys.publicKey);
  const issuing = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serialHex(generateSerial()),
      subject: `CN=${org} issuing CA 1, O=${org}`,
      issuer: root.subject,
      notBefore: start,
      notAfter: addYears(start, 5),
      publicKey: issuingKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: ECDSA_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true), // pathLen 0: issues only end-entity certificates
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectKeyIdentifierExtension(keyIdentifierHex(issuingSpki)),
        new x509.AuthorityKeyIdentifierExtension(rootKeyId),
      ],
    },
    webcrypto,
  );

  const rootCertPem = root.toString('pem') + '\n';
  const issuingCertPem = issuing.toString('pem') + '\n';
  const issuingKeyPem = await pkcs8Pem(issuingKeys.privateKey);
  // Checks the new hierarchy end to end (key matches, root signed the intermediate) before anything is returned.
  createIssuingCa({ issuingCertificatePem: issuingCertPem, issuingPrivateKey: createPrivateKey(issuingKeyPem), rootCertificatePem: rootCertPem });
  const server = await issueServerCertificate({ now: options.now, serverNames: options.serverNames, issuingCertificatePem: issuingCertPem, issuingKeyPem });
  return {
    rootCertPem,
    rootKeyPem: await pkcs8Pem(rootKeys.privateKey),
    issuingCertPem,
    issuingKeyPem,
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
