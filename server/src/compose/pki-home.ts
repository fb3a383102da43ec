import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createCaMaterial, createIssuingCa, issueServerCertificate } from '@enrolld/core/ca/index.js';
import { toPem } from '@enrolld/core/ca/der.js';
import type { IssuingCa } from '@enrolld/core/ca/types.js';

// ENROLLD_HOME's PKI files, and the only module that reads a private key file (root, issuing CA, server TLS key).
// Each process role reads exactly what it needs (docs/architecture.md §4): the API and the worker the issuing key, the
// broker only its TLS key; the root key is used only when the CA is created.
// Private keys are 0600 files; the home directory is 0711 so the embedded Postgres (running as OS user `postgres`
// when we are root) can reach its data directory without listing ours.
export const pkiPaths = (home: string) => ({
  home,
  caDir: path.join(home, 'ca'),
  rootCert: path.join(home, 'ca', 'root.pem'),
  rootKey: path.join(home, 'ca', 'root.key'),
  issuingCert: path.join(home, 'ca', 'issuing.pem'),
  issuingKey: path.join(home, 'ca', 'issuing.key'),
  chain: path.join(home, 'ca', 'chain.pem'),
  serverCert: path.join(home, 'tls', 'server.pem'),
  serverKey: path.join(home, 'tls', 'server.key'),
});

export interface PkiHome {
  rootCertPem: string;
  issuingCertPem: string;
  /** Issuing CA then root. */
  chainPem: string;
  /** Server certificate then issuing CA, as the TLS server presents it. */
  serverCertPem: string;
  serverKeyPem: string;
  /** The issuing CA, its key loaded once from the 0600 file; the key never leaves core's signer. */
  ca: IssuingCa;
  created: boolean;
  serverCertRenewed: boolean;
}

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/** Writes a file atomically with the given mode, so a crash never leaves half a key. */
async function writeSecureFile(file: string, content: string, mode: number): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, content, { mode });
  await chmod(temp, mode);
  await rename(temp, file);
}

/** Creates the CA hierarchy and server certificate on first use (`enrolld ca init` or first `enrolld up`). */
export async function initPki(home: string, options: { serverNames: string[]; now?: Date }): Promise<boolean> {
  const p = pkiPaths(home);
  if (await exists(p.issuingKey)) return false;
  await mkdir(home, { recursive: true, mode: 0o711 });
  await chmod(home, 0o711);
  await mkdir(p.caDir, { recursive: true, mode: 0o755 });
  await mkdir(path.dirname(p.serverCert), { recursive: true, mode: 0o700 });
  const m = await createCaMaterial({ now: options.now ?? new Date(), serverNames: options.serverNames });
  await writeSecureFile(p.rootKey, m.rootKeyPem, 0o600);
  await writeSecureFile(p.issuingKey, m.issuingKeyPem, 0o600);
  await writeSecureFile(p.serverKey, m.serverKeyPem, 0o600);
  await writeSecureFile(p.rootCert, m.rootCertPem, 0o644);
  await writeSecureFile(p.issuingCert, m.issuingCertPem, 0o644);
  await writeSecureFile(p.chain, m.issuingCertPem + m.rootCertPem, 0o644);
  // The server presents its chain (leaf + issuing CA): devices hold only the root.
  await writeSecureFile(p.serverCert, m.serverChainPem, 0o644);
  return true;
}

function serverCertCovers(certPem: string, names: string[], now: Date): boolean {
  const cert = new X509Certificate(certPem);
  const san = cert.subjectAltName ?? '';
  // Renew a month before expiry, so a long-running install never serves an expired API certificate.
  if (new Date(cert.validTo).getTime() - now.getTime() < 30 * 86_400_000) return false;
  return names.every((n) => san.includes(`DNS:${n}`) || san.includes(`IP Address:${n}`));
}

/** Loads ENROLLD_HOME's PKI, creating it if missing and re-issuing the server cert if configured names changed. */
export async function loadPki(home: string, options: { serverNames: string[]; now?: Date }): Promise<PkiHome> {
  const now = options.now ?? new Date();
  const created = await initPki(home, options);
  const p = pkiPaths(home);
  const [rootCertPem, issuingCertPem, issuingKeyPem] = await Promise.all([
    readFile(p.rootCert, 'utf8'),
    readFile(p.issuingCert, 'utf8'),
    readFile(p.issuingKey, 'utf8'),
  ]);
  const issuingKey = createPrivateKey(issuingKeyPem);
  let serverCertPem = await readFile(p.serverCert, 'utf8');
  let serverKeyPem = await readFile(p.serverKey, 'utf8');
  let serverCertRenewed = false;
  if (!serverCertCovers(serverCertPem, options.serverNames, now)) {
    const renewed = await issueServerCertificate({ now, serverNames: options.serverNames, issuingCertificatePem: issuingCertPem, issuingPrivateKey: issuingKey });
    await writeSecureFile(p.serverKey, renewed.serverKeyPem, 0o600);
    await writeSecureFile(p.serverCert, renewed.serverChainPem, 0o644);
    serverCertPem = renewed.serverChainPem;
    serverKeyPem = renewed.serverKeyPem;
    serverCertRenewed = true;
  }
  return {
    rootCertPem,
    issuingCertPem,
    chainPem: issuingCertPem + rootCertPem,
    serverCertPem,
    serverKeyPem,
    ca: createIssuingCa({ issuingCertificatePem: issuingCertPem, issuingPrivateKey: issuingKey, rootCertificatePem: rootCertPem }),
    created,
    serverCertRenewed,
  };
}

/** Reads a file a role needs, or says which command creates it. */
async function readHomeFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    throw new Error(`cannot read ${file}: run \`enrolld up\` (or \`enrolld ca init\`) once with this ENROLLD_HOME first`);
  }
}

/** What a broker serves with: its TLS key and chain, and the CA certificates. Never a CA key. */
export interface BrokerMaterial {
  serverKeyPem: string;
  /** Server certificate then issuing CA. */
  serverCertPem: string;
  /** Issuing CA then root. */
  chainPem: string;
  issuingCertPem: string;
}

export async function readBrokerMaterial(home: string): Promise<BrokerMaterial> {
  const p = pkiPaths(home);
  const [serverKeyPem, serverCertPem, rootPem, issuingCertPem] = await Promise.all([
    readHomeFile(p.serverKey),
    readHomeFile(p.serverCert),
    readHomeFile(p.rootCert),
    readHomeFile(p.issuingCert),
  ]);
  return { serverKeyPem, serverCertPem, chainPem: issuingCertPem + rootPem, issuingCertPem };
}

/** The issuing CA of an existing home (the worker: a supersession rebuilds the CRL). */
export async function readIssuingCa(home: string): Promise<IssuingCa> {
  const p = pkiPaths(home);
  const [issuingCertificatePem, issuingKeyPem, rootCertificatePem] = await Promise.all([readHomeFile(p.issuingCert), readHomeFile(p.issuingKey), readHomeFile(p.rootCert)]);
  return createIssuingCa({ issuingCertificatePem, issuingPrivateKey: createPrivateKey(issuingKeyPem), rootCertificatePem });
}
