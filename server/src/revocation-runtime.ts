// Composition for revocation and the broker (DESIGN.md §1 composition; issue 4). Used by `enrolld up` (API + broker
// in one process) and `enrolld broker` (broker alone). Both get the same revocation events: NOTIFY plus the seq resync.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createPgRevocationListener, createPgRevocationStore } from '@enrolld/db';
import { createIssuingCa } from '@enrolld/core/ca/index.js';
import type { IssuingCa } from '@enrolld/core/ca/types.js';
import { systemClock } from '@enrolld/core/clock.js';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import { createRevocationService, type RevocationService } from '@enrolld/core/revocation/revocation-service.js';
import { crlRoutes, revocationAdminRoutes } from './http/revocation-routes.js';
import { createBroker, defaultBrokerConfig, type Broker, type BrokerConfig } from './mqtt/broker.js';

/** CRLs are valid this long; the API rebuilds them at half-life, so a stopped API leaves brokers days of margin. */
export const CRL_VALIDITY_MS = 7 * 24 * 3600_000;
const CRL_REFRESH_CHECK_MS = 15 * 60_000;

export const rootArlPath = (caDir: string) => path.join(caDir, 'root-arl.pem');

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;
}

/**
 * The root's CRL over the issuing CA (an ARL, empty: the issuing CA is not revoked). Node sets
 * X509_V_FLAG_CRL_CHECK_ALL whenever a CRL is configured, so without a CRL for every CA in the chain each handshake
 * fails with UNABLE_TO_GET_CRL. Signed with the root key once (by `enrolld up`), valid until the issuing CA expires,
 * written next to the CA certificates; broker processes only read the file and never hold a CA key.
 */
export async function ensureRootArl(files: { caDir: string; rootCert: string; rootKey: string; issuingCert: string }, now = new Date()): Promise<string> {
  const file = rootArlPath(files.caDir);
  const existing = await readFile(file, 'utf8').catch(() => undefined);
  const issuingNotAfter = new Date(new X509Certificate(await readFile(files.issuingCert, 'utf8')).validTo);
  if (existing) {
    const stamp = await readFile(`${file}.next-update`, 'utf8').catch(() => '');
    if (stamp && Date.parse(stamp.trim()) >= issuingNotAfter.getTime()) return existing;
  }
  const rootPem = await readFile(files.rootCert, 'utf8');
  const rootKey = createPrivateKey(await readFile(files.rootKey, 'utf8'));
  // The same CRL encoder, with the root as the issuer (issuer name and AKI come from the root certificate).
  const root = createIssuingCa({ issuingCertificatePem: rootPem, issuingPrivateKey: rootKey, rootCertificatePem: rootPem });
  const der = root.signCrl({ entries: [], crlNumber: BigInt(Math.floor(now.getTime() / 1000)), thisUpdate: now, nextUpdate: issuingNotAfter });
  const text = pem('X509 CRL', der);
  await writeFile(`${file}.tmp`, text, { mode: 0o644 });
  await chmod(`${file}.tmp`, 0o644);
  await rename(`${file}.tmp`, file);
  await writeFile(`${file}.next-update`, issuingNotAfter.toISOString() + '\n', { mode: 0o644 });
  return text;
}

export interface BrokerMaterial {
  serverKeyPem: string;
  /** Server certificate then issuing CA. */
  serverCertPem: string;
  /** Issuing CA then root. */
  chainPem: string;
  issuingCertPem: string;
  rootArlPem: string;
}

export interface BrokerRuntimeDeps {
  pool: pg.Pool;
  databaseUrl: string;
  logger: Logger;
  registry: Registry;
  material: BrokerMaterial;
  config: Partial<BrokerConfig> & Pick<BrokerConfig, 'host' | 'port'>;
}

export function createBrokerRuntime(deps: BrokerRuntimeDeps): Broker {
  return createBroker({
    config: { ...defaultBrokerConfig, ...deps.config },
    tls: {
      key: deps.material.serverKeyPem,
      cert: deps.material.serverCertPem,
      ca: deps.material.chainPem,
      issuingCertificate: deps.material.issuingCertPem,
      extraCrls: [deps.material.rootArlPem],
    },
    store: createPgRevocationStore(deps.pool),
    feed: createPgRevocationListener({ connectionString: deps.databaseUrl, applicationName: 'enrolld-broker-listen' }),
    clock: systemClock,
    logger: deps.logger,
    registry: deps.registry,
  });
}

export interface RevocationRuntime {
  service: RevocationService;
  publicRouters: ReturnType<typeof crlRoutes>[];
  adminRouters: ReturnType<typeof revocationAdminRoutes>[];
  /** Builds the first CRL if there is none, and keeps it fresh. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Late binding: the broker starts after the HTTP app is built. */
  attachBroker(broker: Pick<Broker, 'revoked'>): void;
}

export function createRevocationRuntime(deps: { pool: pg.Pool; ca: Pick<IssuingCa, 'signCrl'>; logger: Logger }): RevocationRuntime {
  let broker: Pick<Broker, 'revoked'> | undefined;
  const store: RevocationStore = createPgRevocationStore(deps.pool);
  const service = createRevocationService({
    store,
    signer: deps.ca,
    clock: systemClock,
    crlValidityMs: CRL_VALIDITY_MS,
    publisher: { revoked: (revoked, crl) => broker?.revoked(revoked, crl) },
    onCrlError: (error) => deps.logger.error({ err: error }, 'CRL rebuild failed; brokers still refuse the serial at CONNECT'),
  });
  let timer: NodeJS.Timeout | undefined;
  return {
    service,
    publicRouters: [crlRoutes({ revocation: service })],
    adminRouters: [revocationAdminRoutes({ revocation: service })],
    async start() {
      const crl = await service.ensureCrlCurrent();
      deps.logger.info({ crlNumber: crl.crlNumber.toString(), nextUpdate: crl.nextUpdate.toISOString() }, 'CRL current');
      timer = setInterval(() => {
        service.ensureCrlCurrent().catch((error: unknown) => deps.logger.error({ err: error }, 'CRL refresh failed'));
      }, CRL_REFRESH_CHECK_MS);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    attachBroker(b) {
      broker = b;
    },
  };
}
