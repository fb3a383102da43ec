// The API role: HTTPS with enrollment, renewal, EST, CRL and admin routes, and the CRL kept current. `enrolld api` runs
// it alone (replicas over one Postgres); `enrolld up` runs it beside the broker and the worker.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { chainOf } from '@enrolld/core/environments/environment-service.js';
import { isEnrollError } from '@enrolld/core/errors.js';
import type { Config } from '../config.js';
import { createHttpApp } from '../http/app.js';
import { startHttpsServer, type RunningHttpsServer } from '../http/https-server.js';
import { classifyInfrastructureError } from '../infrastructure-errors.js';
import { createDatabaseUpGauge, createFleetMetrics, createRegistry } from '../metrics.js';
import { ensureAdminToken } from './admin-token.js';
import { buildClusterEvents } from './cluster-events.js';
import { buildOnDatabase, type Database } from './database.js';
import { prepareEnvironments } from './environments.js';
import { environmentsWithoutCa, loadPki, pkiPaths, type PkiHome } from './pki-home.js';
import { buildUseCases, type UseCases } from './use-cases.js';
import { buildJobProducer } from './worker.js';

export interface ApiRoleDeps {
  config: Readonly<Config>;
  logger: Logger;
  registry: Registry;
  database: Database;
  pki: PkiHome;
  useCases: UseCases;
  /** Readiness beyond the database, from parts sharing this process (the broker's revocation state and cluster bus). */
  readiness?: Record<string, () => boolean> | undefined;
  /** Aborted when the process starts shutting down: a feed lost after that is expected (quietOnShutdown). */
  stopping?: AbortSignal | undefined;
}

export interface ApiRole {
  /** Makes sure a current CRL exists, keeps it so, and listens on HTTPS_PORT. */
  listen(): Promise<{ port: number; url: string }>;
  stop(): Promise<void>;
}

export function buildApiRole(deps: ApiRoleDeps): ApiRole {
  const { config, logger, useCases } = deps;
  createFleetMetrics(deps.registry, { ...useCases.fleet, connectedByProfile: () => useCases.presence.connectedByProfile() });
  createDatabaseUpGauge(deps.registry, async () => {
    await deps.database.pool.query('SELECT 1');
  });
  const environmentCas = watchEnvironmentCas(config.home, () => useCases.environments.list(), logger);
  /** Rebuilds one environment's CRL when due; one whose CA this home lacks is logged (watchEnvironmentCas), not fatal. */
  const keepCrlCurrent = async (environment: string) => {
    try {
      return await useCases.revocation.ensureCrlCurrent(environment);
    } catch (error) {
      if (isEnrollError(error) && error.kind === 'environment-ca-unavailable') {
        await environmentCas.check();
        return undefined;
      }
      throw error;
    }
  };
  const app = createHttpApp({
    logger,
    registry: deps.registry,
    useCases,
    popLinking: config.rotation.estPopLinking,
    checkReadiness: async () => {
      const database = await deps.database.pool.query('SELECT 1').then(() => true, () => false);
      return { database, ...Object.fromEntries(Object.entries(deps.readiness ?? {}).map(([name, check]) => [name, check()])) };
    },
    readinessNotes: async () => {
      const missing = await environmentCas.check();
      return missing && missing.length > 0 ? { environmentsWithoutCa: missing } : {};
    },
    classifyError: classifyInfrastructureError,
    consoleSessionTtlMs: config.consoleSessionTtlMs,
    trustedProxies: config.http.trustedProxies,
    failedTokenLimit: config.http.failedTokenLimit,
  });
  // The other processes' live events reach this API's event streams, and this process's reach theirs.
  const clusterEvents = buildClusterEvents({ database: deps.database, events: useCases.fleetEvents, logger, registry: deps.registry, listen: true, stopping: deps.stopping });
  let https: RunningHttpsServer | undefined;
  let crlTimer: NodeJS.Timeout | undefined;
  return {
    async listen() {
      // One CRL per environment's issuing CA, each kept current on its own.
      const environments = await useCases.environments.list();
      // A replica whose home lacks an environment's CA still starts: the other environments are served, and that
      // one's requests answer 503 environment-ca-unavailable (docs/architecture.md §5).
      await environmentCas.check();
      for (const { name } of environments) {
        const crl = await keepCrlCurrent(name);
        if (crl) logger.info({ environment: name, crlNumber: crl.crlNumber.toString(), nextUpdate: crl.nextUpdate.toISOString() }, 'CRL current');
      }
      crlTimer = setInterval(() => {
        useCases.environments
          .list()
          .then((live) => Promise.all(live.map(({ name }) => keepCrlCurrent(name))))
          .catch((error: unknown) => logger.error({ err: error }, 'CRL refresh failed'));
      }, config.revocation.crlRefreshCheckMs);
      crlTimer.unref();
      useCases.connectedSeries.start();
      await clusterEvents.start();
      https = await startHttpsServer({
        app,
        certPem: deps.pki.serverCertPem,
        keyPem: deps.pki.serverKeyPem,
        // Only the CAs a client certificate is asked for (mTLS renewal); the renewal use case decides what it accepts.
        clientCaPem: environments.map(chainOf).join(''),
        host: config.listenHost,
        port: config.httpsPort,
      });
      return { port: https.port, url: `https://localhost:${https.port}` };
    },
    async stop() {
      clearInterval(crlTimer);
      crlTimer = undefined;
      await useCases.connectedSeries.stop();
      await https?.close();
      https = undefined;
      await clusterEvents.stop();
    },
  };
}

/**
 * Which live environments this home holds no CA for (other replicas created them into their own homes). Each check
 * reads the list and the files again, so copying envs/<name>/ in clears it; a change is logged once, one line per
 * environment with the file it lacks (never its contents). Undefined when the list cannot be read.
 */
function watchEnvironmentCas(home: string, list: () => Promise<Array<{ name: string }>>, logger: Logger) {
  let reported = new Set<string>();
  return {
    async check(): Promise<string[] | undefined> {
      const live = await list().catch(() => undefined);
      if (!live) return undefined;
      const missing = await environmentsWithoutCa(home, live.map((e) => e.name));
      for (const { environment, missing: file } of missing) {
        if (!reported.has(environment)) {
          logger.warn(
            { environment, missing: file },
            'this API cannot sign for the environment: its CA is not in ENROLLD_HOME; share ENROLLD_HOME/envs/ between the API replicas and the worker',
          );
        }
      }
      const now = new Set(missing.map((m) => m.environment));
      for (const environment of reported) if (!now.has(environment)) logger.info({ environment }, 'the environment\'s CA is in ENROLLD_HOME now');
      reported = now;
      return [...now];
    },
  };
}

/** The home's PKI for `enrolld up` and `enrolld api`: created on first use. */
export async function prepareApiPki(config: Readonly<Config>, logger: Logger): Promise<PkiHome> {
  const pki = await loadPki(config.home, { serverNames: config.serverNames });
  if (pki.created) logger.info({ caDir: pkiPaths(config.home).caDir }, 'created root and issuing CA');
  if (pki.serverCertRenewed) logger.info({ serverNames: config.serverNames }, 'issued a new server certificate');
  return pki;
}

/** The first admin credential (ENROLLD_HOME/admin-token, 0600), registered in this database. */
export async function ensureFirstAdmin(config: Readonly<Config>, useCases: UseCases, logger: Logger): Promise<void> {
  const admin = await ensureAdminToken(config.paths.adminTokenFile, useCases.adminCredentials);
  if (admin.created) logger.info({ adminTokenFile: config.paths.adminTokenFile }, 'created the admin token');
}

export interface BuiltApi {
  useCases: UseCases;
  listen(): Promise<{ port: number; url: string }>;
  stop(): Promise<void>;
}

/** `enrolld api`: the API alone, over the DATABASE_URL the other roles share. */
export async function buildApi(config: Readonly<Config>, logger: Logger, signal?: AbortSignal): Promise<BuiltApi> {
  const options = { config, logger, applicationName: 'enrolld-api', poolMax: config.dbPoolMax, allowEmbedded: false, signal };
  return buildOnDatabase(options, async (database) => {
    const pki = await prepareApiPki(config, logger);
    const environments = await prepareEnvironments(config, logger, database.pool, pki, { recordDefault: true });
    const registry = createRegistry();
    // No broker in this process: revocations reach brokers through NOTIFY and the sequence resync.
    const useCases = buildUseCases({ config, pool: database.pool, revocationPool: database.revocationPool, ...environments, logger, registry });
    await ensureFirstAdmin(config, useCases, logger);
    const api = buildApiRole({ config, logger, registry, database, pki, useCases, stopping: signal });
    // Bulk revocations started here are queued for an `enrolld worker`.
    const producer = buildJobProducer({ config, logger, registry, databaseUrl: database.url, useCases });
    return {
      useCases,
      async listen() {
        producer.listen();
        return api.listen();
      },
      async stop() {
        await api.stop();
        await producer.stop();
      },
    };
  });
}
