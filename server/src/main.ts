import type { Logger } from 'pino';
import { createPgAdminCredentialStore, createPgDeviceStore, createPgEnrollmentStore, createPgTokenStore, createPool, isDatabaseUnavailable, migrate, startEmbeddedPostgres } from '@enrolld/db';
import type { EmbeddedPostgresHandle } from '@enrolld/db';
import { ensureAdminToken } from './admin-token.js';
import { classifyInfrastructureError } from './infrastructure-errors.js';
import type { Config } from './config.js';
import { createAdminAuthenticator } from '@enrolld/core/admin-auth.js';
import { createIssuingCa } from '@enrolld/core/ca/index.js';
import { systemClock } from '@enrolld/core/clock.js';
import { createEnrollment } from '@enrolld/core/enroll.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { AdminCredentialStore, DeviceStore, EnrollmentStore, TokenStore } from '@enrolld/core/ports.js';
import { createTokenIssuer } from '@enrolld/core/tokens.js';
import { createHttpApp } from './http/app.js';
import { startHttpsServer } from './http/https-server.js';
import { createMetrics } from './metrics.js';
import { loadPki, pkiPaths } from './pki-home.js';
import { createBrokerRuntime, createRevocationRuntime, ensureRootArl } from './revocation-runtime.js';
import { createRotationRuntime } from './rotation-runtime.js';

export interface RunningEnrolld {
  apiUrl: string;
  httpsPort: number;
  /** The MQTT broker's port (mTLS). */
  mqttsPort: number;
  databaseUrl: string;
  stop(): Promise<void>;
}

async function migrateWhenReachable(pool: Parameters<typeof migrate>[0], logger: Logger, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const applied = await migrate(pool);
      if (applied.length > 0) logger.info({ applied }, 'database migrated');
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || signal.aborted) throw error;
      if (attempt === 1 || attempt % 15 === 0) logger.warn({ err: error }, 'waiting for Postgres');
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** `enrolld up`: everything in one process. Ordered start, ordered stop. */
export async function startEnrolld(config: Readonly<Config>, logger: Logger, signal: AbortSignal = new AbortController().signal): Promise<RunningEnrolld> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => logger.error({ err }, 'error during shutdown'));
  };
  try {
    let databaseUrl = config.databaseUrl;
    if (!databaseUrl) {
      logger.info({ dataDir: `${config.home}/pg` }, 'DATABASE_URL not set: starting embedded Postgres');
      const embedded: EmbeddedPostgresHandle = await startEmbeddedPostgres({ home: config.home, onLog: (line) => logger.debug({ postgres: line }) });
      stops.push(() => embedded.stop());
      databaseUrl = embedded.url;
    }
    const pool = createPool({ connectionString: databaseUrl, max: config.dbPoolMax, applicationName: 'enrolld-api' });
    stops.push(() => pool.end());
    await migrateWhenReachable(pool, logger, signal);

    const pki = await loadPki(config.home, { serverNames: config.serverNames });
    if (pki.created) logger.info({ caDir: pkiPaths(config.home).caDir }, 'created root and issuing CA');
    if (pki.serverCertRenewed) logger.info({ serverNames: config.serverNames }, 'issued a new server certificate');
    const ca = createIssuingCa({ issuingCertificatePem: pki.issuingCertPem, issuingPrivateKey: pki.issuingKey, rootCertificatePem: pki.rootCertPem });

    const adminStore = createPgAdminCredentialStore(pool);
    const admin = await ensureAdminToken(config.paths.adminTokenFile, adminStore);
    if (admin.created) logger.info({ adminTokenFile: config.paths.adminTokenFile }, 'created the admin token');

    const metrics = createMetrics();
    const enrollmentStore: EnrollmentStore = createPgEnrollmentStore(pool);
    const tokenStore: TokenStore = createPgTokenStore(pool);
    const deviceStore: DeviceStore = createPgDeviceStore(pool);
    const adminCredentials: AdminCredentialStore = adminStore;
    const enrollment = createEnrollment({
      store: enrollmentStore,
      ca,
      clock: systemClock,
      policy: {
        certificateLifetimeSeconds: config.certificateLifetimeSeconds,
        backdateSeconds: config.backdateSeconds,
        retryWindowSeconds: config.enrollRetryWindowSeconds,
        inFlightSeconds: 10,
      },
      onOutcome: (outcome, seconds) => {
        metrics.enrollments.inc({ outcome });
        metrics.issuanceSeconds.observe({ outcome }, seconds);
      },
    });
    const revocation = createRevocationRuntime({ pool, ca, logger });
    await revocation.start();
    stops.push(() => revocation.stop());
    // Rotation (issue 5): renewal over REST/EST/MQTT, lineage, EST, and the BullMQ sweep (never waits on Redis).
    const rotation = createRotationRuntime({
      pool, databaseUrl, ca, logger, registry: metrics.registry, config, revoker: revocation.service, enrollment,
      runWorkers: config.rotation.jobs === 'in-process',
    });
    const app = createHttpApp({
      publicRouters: [...revocation.publicRouters, ...rotation.publicRouters],
      adminRouters: revocation.adminRouters,
      logger,
      registry: metrics.registry,
      enrollment,
      chainPem: ca.chainPem,
      tokens: createTokenIssuer({ store: tokenStore, clock: systemClock, defaultTtlSeconds: config.tokenTtlSeconds }),
      devices: deviceStore,
      authenticateAdmin: createAdminAuthenticator(adminCredentials),
      checkHealth: async () => {
        await pool.query('SELECT 1');
      },
      classifyError: classifyInfrastructureError,
    });
    const https = await startHttpsServer({
      app,
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
      clientCaPem: ca.chainPem,
      host: config.listenHost,
      port: config.httpsPort,
    });
    stops.push(() => https.close());

    // The broker in the same process (issue 4; `enrolld broker` runs it alone). It gets revocations in-process as well
    // as through NOTIFY and the seq resync.
    const broker = createBrokerRuntime({
      pool,
      databaseUrl,
      logger,
      registry: metrics.registry,
      material: {
        serverKeyPem: pki.serverKeyPem,
        serverCertPem: pki.serverCertPem,
        chainPem: ca.chainPem,
        issuingCertPem: pki.issuingCertPem,
        rootArlPem: await ensureRootArl(pkiPaths(config.home)),
      },
      config: { host: config.listenHost, port: config.mqttsPort },
    });
    const { port: mqttsPort } = await broker.start();
    stops.push(() => broker.stop());
    revocation.attachBroker(broker);
    rotation.attachBroker(broker);
    await rotation.start();
    stops.push(() => rotation.stop());

    const apiUrl = `https://localhost:${https.port}`;
    logger.info(
      { apiUrl, httpsPort: https.port, mqttsPort, rootCa: config.paths.rootCert, adminTokenFile: config.paths.adminTokenFile, embeddedPostgres: !config.databaseUrl },
      'enrolld ready',
    );
    return { apiUrl, httpsPort: https.port, mqttsPort, databaseUrl, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
