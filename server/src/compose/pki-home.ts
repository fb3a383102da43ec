import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, chmod, mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULT_ENVIRONMENT } from '@enrolld/protocol';
import { createCaMaterial, createIssuingCa, createIssuingCaMaterial, createRootCaMaterial, issueServerCertificate } from '@enrolld/core/ca/index.js';
import type { CaKeyPair } from '@enrolld/core/ca/index.js';
import { fromPem } from '@enrolld/core/ca/der.js';
import type { IssuingCa } from '@enrolld/core/ca/types.js';
import type { EnvironmentCaFactory, EnvironmentChain, EnvironmentStore, IssuingCas } from '@enrolld/core/environments/ports.js';
import { EnrollError } from '@enrolld/core/errors.js';

// ENROLLD_HOME's PKI files, and the only module that reads a private key file (root, issuing CAs, server TLS keys).
// Each process role reads exactly what it needs (docs/architecture.md §4): the API and the worker the issuing keys, the
// broker only its TLS key; the root key is used only when the CA or an environment under it is created.
// Private keys are 0600 files; the home directory is 0711 so the embedded Postgres (running as OS user `postgres`
// when we are root) can reach its data directory without listing ours.
//
// Environments other than `default` keep their CA under envs/<name>/: issuing.key and issuing.pem, root.pem (and
// root.key with a root of their own), and tls/ with the TLS server certificate their broker presents (issued by their
// issuing CA, so their devices, which trust only their chain, can verify it). Their public chain is also recorded in
// Postgres, where a broker on another host reads what it trusts.
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

/** The files of one environment; those of `default` are the home's own (pkiPaths). */
export function environmentPaths(home: string, environment: string) {
  if (environment === DEFAULT_ENVIRONMENT) return pkiPaths(home);
  const dir = path.join(home, 'envs', environment);
  return {
    home,
    caDir: dir,
    rootCert: path.join(dir, 'root.pem'),
    rootKey: path.join(dir, 'root.key'),
    issuingCert: path.join(dir, 'issuing.pem'),
    issuingKey: path.join(dir, 'issuing.key'),
    chain: path.join(dir, 'chain.pem'),
    serverCert: path.join(dir, 'tls', 'server.pem'),
    serverKey: path.join(dir, 'tls', 'server.key'),
  };
}
type PkiPaths = ReturnType<typeof pkiPaths>;

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

/** The TLS server certificate of a PKI directory, re-issued by its issuing CA when it misses a name or nears expiry. */
async function ensureServerCertificate(
  p: Pick<PkiPaths, 'serverCert' | 'serverKey'>,
  issuingCertPem: string,
  issuingKey: KeyObject,
  serverNames: string[],
  now: Date,
): Promise<{ serverCertPem: string; serverKeyPem: string; renewed: boolean }> {
  const serverCertPem = await readFile(p.serverCert, 'utf8');
  if (serverCertCovers(serverCertPem, serverNames, now)) return { serverCertPem, serverKeyPem: await readFile(p.serverKey, 'utf8'), renewed: false };
  const renewed = await issueServerCertificate({ now, serverNames, issuingCertificatePem: issuingCertPem, issuingPrivateKey: issuingKey });
  await writeSecureFile(p.serverKey, renewed.serverKeyPem, 0o600);
  await writeSecureFile(p.serverCert, renewed.serverChainPem, 0o644);
  return { serverCertPem: renewed.serverChainPem, serverKeyPem: renewed.serverKeyPem, renewed: true };
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
  const { serverCertPem, serverKeyPem, renewed: serverCertRenewed } = await ensureServerCertificate(p, issuingCertPem, issuingKey, options.serverNames, now);
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

/**
 * The broker of `default` reads everything from the home (it may start before Postgres answers). The broker of
 * another environment reads only its TLS key and certificate from envs/<name>/tls/; what it trusts is the chain
 * recorded in Postgres, so a broker host needs no CA file.
 */
export async function readBrokerMaterial(home: string, environment?: { name: string; chain: EnvironmentChain }): Promise<BrokerMaterial> {
  if (environment === undefined || environment.name === DEFAULT_ENVIRONMENT) {
    const p = pkiPaths(home);
    const [serverKeyPem, serverCertPem, rootPem, issuingCertPem] = await Promise.all([
      readHomeFile(p.serverKey),
      readHomeFile(p.serverCert),
      readHomeFile(p.rootCert),
      readHomeFile(p.issuingCert),
    ]);
    return { serverKeyPem, serverCertPem, chainPem: issuingCertPem + rootPem, issuingCertPem };
  }
  const p = environmentPaths(home, environment.name);
  const [serverKeyPem, serverCertPem] = await Promise.all([readEnvironmentFile(p.serverKey, environment.name), readEnvironmentFile(p.serverCert, environment.name)]);
  const { issuingCertificatePem, rootCertificatePem } = environment.chain;
  return { serverKeyPem, serverCertPem, chainPem: issuingCertificatePem + rootCertificatePem, issuingCertPem: issuingCertificatePem };
}

/** A file of an environment's directory, or which one to copy from the API that created the environment. */
async function readEnvironmentFile(file: string, environment: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    throw new Error(`cannot read ${file}: copy ENROLLD_HOME/envs/${environment}/ from the home of the API that created environment "${environment}"`);
  }
}

/** The issuing CA of `default` in an existing home, with its chain (the worker: a supersession rebuilds the CRL). */
export async function readHomeCa(home: string): Promise<Pick<PkiHome, 'ca' | 'issuingCertPem' | 'rootCertPem'>> {
  const p = pkiPaths(home);
  const [issuingCertPem, issuingKeyPem, rootCertPem] = await Promise.all([readHomeFile(p.issuingCert), readHomeFile(p.issuingKey), readHomeFile(p.rootCert)]);
  const ca = createIssuingCa({ issuingCertificatePem: issuingCertPem, issuingPrivateKey: createPrivateKey(issuingKeyPem), rootCertificatePem: rootCertPem });
  return { ca, issuingCertPem, rootCertPem };
}

/** The issuing CA of `default` in an existing home. */
export async function readIssuingCa(home: string): Promise<IssuingCa> {
  return (await readHomeCa(home)).ca;
}

/** Seconds a client is asked to wait before it retries a request this replica cannot sign: another replica may. */
const ENVIRONMENT_CA_RETRY_AFTER_S = 5;

/**
 * The answer of a process whose home does not hold an environment's CA (an API replica that did not create it, with its
 * own ENROLLD_HOME): a deployment fault, 503 with what the operator must do; the file goes to the log only.
 */
function environmentCaUnavailable(environment: string, why: string): EnrollError {
  return new EnrollError(
    'environment-ca-unavailable',
    `this server cannot sign for environment "${environment}": its ENROLLD_HOME does not hold that environment's CA. ` +
      `Operator: share ENROLLD_HOME/envs/ between every API replica and the worker (one volume, as docker-compose.yml mounts; ` +
      `on Kubernetes a shared volume or a Secret per environment), or copy envs/${environment}/ from the home of the API that created it`,
    { logDetail: `environment ${environment}: ${why}`, retryAfterSeconds: ENVIRONMENT_CA_RETRY_AFTER_S, extensions: { environment } },
  );
}

/** The issuing CA key and certificate of one environment, checked against the chain recorded for it. */
async function readEnvironmentCa(home: string, environment: string, recorded: EnvironmentChain): Promise<IssuingCa> {
  const p = environmentPaths(home, environment);
  let issuingCertificatePem: string;
  let issuingKeyPem: string;
  try {
    [issuingCertificatePem, issuingKeyPem] = await Promise.all([readFile(p.issuingCert, 'utf8'), readFile(p.issuingKey, 'utf8')]);
  } catch (error) {
    // fs errors name the code and the path, never file contents.
    throw environmentCaUnavailable(environment, (error as Error).message);
  }
  if (!fromPem(issuingCertificatePem, 'CERTIFICATE').equals(fromPem(recorded.issuingCertificatePem, 'CERTIFICATE'))) {
    throw environmentCaUnavailable(environment, `${p.issuingCert} is not the issuing CA recorded for it: this home is not the one that created it`);
  }
  return createIssuingCa({ issuingCertificatePem, issuingPrivateKey: createPrivateKey(issuingKeyPem), rootCertificatePem: recorded.rootCertificatePem });
}

/**
 * The environments (other than `default`) whose issuing CA this home cannot read, each with the first file missing:
 * what an API replica's /readyz reports. Only checks that the files are readable; a wrong CA is found at first use.
 */
export async function environmentsWithoutCa(home: string, environments: string[]): Promise<Array<{ environment: string; missing: string }>> {
  const found = await Promise.all(
    environments.filter((name) => name !== DEFAULT_ENVIRONMENT).map(async (environment) => {
      const p = environmentPaths(home, environment);
      for (const file of [p.issuingCert, p.issuingKey]) {
        if (!(await access(file, fsConstants.R_OK).then(() => true, () => false))) return { environment, missing: file };
      }
      return undefined;
    }),
  );
  return found.filter((f): f is { environment: string; missing: string } => f !== undefined);
}

/** A fresh issuer list is read at most this often when a certificate names none we know (a foreign one, or a new environment). */
const ISSUER_REFRESH_MS = 1000;

/**
 * Each environment's issuing CA for a process that signs (API, worker): `default` is the home's, loaded at start; another
 * is loaded from envs/<name>/ the first time it is needed and checked against the chain recorded in Postgres.
 */
export function createIssuingCas(home: string, deps: { defaultCa: IssuingCa; environments: Pick<EnvironmentStore, 'get' | 'list'> }): IssuingCas {
  const loaded = new Map<string, Promise<IssuingCa>>();
  let issuers: Array<{ environment: string; certificate: X509Certificate }> = [
    { environment: DEFAULT_ENVIRONMENT, certificate: new X509Certificate(deps.defaultCa.certificateDer) },
  ];
  let issuersReadAt = Number.NEGATIVE_INFINITY;

  async function load(environment: string, live: boolean): Promise<IssuingCa> {
    if (environment === DEFAULT_ENVIRONMENT) return deps.defaultCa;
    const record = await deps.environments.get(environment);
    if (!record || (live && record.deletedAt)) {
      throw new EnrollError('bad-request', `unknown environment "${environment}"${record?.deletedAt ? ' (deleted)' : ''}`);
    }
    let ca = loaded.get(environment);
    if (!ca) {
      ca = readEnvironmentCa(home, environment, record);
      loaded.set(environment, ca);
      // A failed read is tried again next time (the files may be copied in meanwhile).
      ca.catch(() => loaded.delete(environment));
    }
    return ca;
  }

  function find(certificate: X509Certificate): string | undefined {
    return issuers.find((i) => certificate.checkIssued(i.certificate) && certificate.verify(i.certificate.publicKey))?.environment;
  }

  return {
    // Liveness is read each time: an environment deleted by another process signs nothing more here either.
    forIssuance: (environment) => load(environment, true),
    forCrl: (environment) => load(environment, false),
    async issuerOf(certificate) {
      const known = find(certificate);
      if (known !== undefined || Date.now() - issuersReadAt < ISSUER_REFRESH_MS) return known;
      issuersReadAt = Date.now();
      const environments = await deps.environments.list();
      issuers = [
        issuers[0]!,
        ...environments.filter((e) => e.name !== DEFAULT_ENVIRONMENT).map((e) => ({ environment: e.name, certificate: new X509Certificate(e.issuingCertificatePem) })),
      ];
      return find(certificate);
    },
  };
}

/** Moves an earlier directory of this name aside: the key files of a create whose row was rolled back, which nothing trusts. */
async function setAside(dir: string): Promise<void> {
  const there = await stat(dir).then(() => true, () => false);
  if (there) await rename(dir, `${path.dirname(dir)}/.${path.basename(dir)}.unused-${Date.now()}`);
}

/**
 * Makes new environments' CAs in this home: an issuing CA under the home's root (whose key it reads from ca/root.key),
 * or a root of its own, and the TLS server certificate of the environment's broker. The files are written to a temporary
 * directory and renamed into envs/<name>/ whole, so a crash never leaves half a CA.
 */
export function createEnvironmentCaFactory(home: string, options: { serverNames: string[]; now?: () => Date }): EnvironmentCaFactory {
  return {
    async create(environment, { ownRoot }) {
      const now = options.now?.() ?? new Date();
      let root: CaKeyPair;
      if (ownRoot) {
        root = await createRootCaMaterial({ now, environment });
      } else {
        const p = pkiPaths(home);
        try {
          root = { certPem: await readFile(p.rootCert, 'utf8'), keyPem: await readFile(p.rootKey, 'utf8') };
        } catch {
          throw new EnrollError('conflict', `an environment under the shared root needs the root key, and this API's home has none (${p.rootKey}); create it where the root key is, or give it a root of its own (ownRoot)`);
        }
      }
      const issuing = await createIssuingCaMaterial({ now, root, environment });
      const server = await issueServerCertificate({ now, serverNames: options.serverNames, issuingCertificatePem: issuing.certPem, issuingKeyPem: issuing.keyPem });
      const p = environmentPaths(home, environment);
      const envsDir = path.dirname(p.caDir);
      await mkdir(envsDir, { recursive: true, mode: 0o755 });
      const temp = path.join(envsDir, `.${environment}.${process.pid}.tmp`);
      const inTemp = (file: string) => path.join(temp, path.relative(p.caDir, file));
      await mkdir(path.join(temp, 'tls'), { recursive: true, mode: 0o700 });
      await chmod(temp, 0o755);
      await writeSecureFile(inTemp(p.issuingKey), issuing.keyPem, 0o600);
      if (ownRoot) await writeSecureFile(inTemp(p.rootKey), root.keyPem, 0o600);
      await writeSecureFile(inTemp(p.issuingCert), issuing.certPem, 0o644);
      await writeSecureFile(inTemp(p.rootCert), root.certPem, 0o644);
      await writeSecureFile(inTemp(p.chain), issuing.certPem + root.certPem, 0o644);
      await writeSecureFile(inTemp(p.serverKey), server.serverKeyPem, 0o600);
      await writeSecureFile(inTemp(p.serverCert), server.serverChainPem, 0o644);
      await setAside(p.caDir);
      await rename(temp, p.caDir);
      return { issuingCertificatePem: issuing.certPem, rootCertificatePem: root.certPem };
    },
  };
}

/** Re-issues the broker TLS certificates of this home's environments whose names changed or that near expiry. */
export async function renewEnvironmentServerCertificates(home: string, options: { serverNames: string[]; now?: Date }): Promise<string[]> {
  const envs = path.join(home, 'envs');
  const names = await readdir(envs).then((entries) => entries.filter((e) => !e.startsWith('.')), () => [] as string[]);
  const renewed: string[] = [];
  for (const environment of names) {
    const p = environmentPaths(home, environment);
    const issuing = await Promise.all([readFile(p.issuingCert, 'utf8'), readFile(p.issuingKey, 'utf8')]).catch(() => undefined);
    if (!issuing) continue; // a broker host's copy holds only tls/
    const result = await ensureServerCertificate(p, issuing[0], createPrivateKey(issuing[1]), options.serverNames, options.now ?? new Date());
    if (result.renewed) renewed.push(environment);
  }
  return renewed;
}
