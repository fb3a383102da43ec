// The commands that run a server role in this process (`up`, `api`, `broker`, `worker`) or create the CA (`ca init`).
// They load the whole server, so cli.ts imports this module only when one of them is asked for; the admin commands
// start without it.
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { buildApi } from '../compose/api.js';
import { buildBroker } from '../compose/broker.js';
import { initPki, pkiPaths } from '../compose/pki-home.js';
import { buildUp } from '../compose/up.js';
import { buildWorker } from '../compose/worker.js';
import { StartInterrupted } from './interrupted.js';
import { note } from './output.js';
import { checkHome, checkPorts, homeHolderNote, lockHome, portError, type PortToCheck } from './start-checks.js';

/** A built role: listen() starts it and returns the banner to print; stop() also works after a failed listen(). */
interface ServedRole {
  listen(): Promise<string>;
  stop(): Promise<void>;
  /** Rejects when the role can no longer run (its embedded Postgres stayed down): it is stopped and the command fails. */
  failed?: Promise<never>;
}

/** What a role checks before it creates anything (cli/start-checks.ts). */
interface StartPlan {
  /** The fixed ports it will listen on, with the setting that moves each. */
  ports: PortToCheck[];
  /** Whether it owns ENROLLD_HOME alone (`enrolld up`: its embedded Postgres and CA live there). */
  lockHome: boolean;
}

/** Resolves with the first SIGINT/SIGTERM. Registered before anything starts, so a Ctrl-C during start is not lost. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });
}

/** How long an interrupted start gets to hand over what it built, and that to stop, before the command ends anyway. */
const INTERRUPTED_START_GRACE_MS = 10_000;

/** Resolves with the promise's value, or undefined when it has not settled within `ms`. */
function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A listen error that is about a port becomes a message naming the port and its setting. */
async function explainListenError(config: Readonly<Config>, plan: StartPlan, error: unknown): Promise<unknown> {
  const e = error as NodeJS.ErrnoException & { port?: number };
  const known = plan.ports.find((p) => p.port === e.port);
  if (!known || (e.code !== 'EADDRINUSE' && e.code !== 'EACCES')) return error;
  return portError(known.host ?? config.listenHost, known.port, known.setting, e, await homeHolderNote(config.home));
}

/** Checks, builds a role, listens, runs until a signal, then stops it in order. Any failure to start rejects. */
async function serve(config: Readonly<Config>, plan: StartPlan, build: (logger: Logger, signal: AbortSignal) => Promise<ServedRole>): Promise<void> {
  const logger = createLogger(config.logLevel);
  const abort = new AbortController();
  const stopped = untilSignal();
  void stopped.then(() => abort.abort());
  // Cheap checks first: nothing is created under ENROLLD_HOME until they pass.
  await checkHome(config.home);
  await checkPorts(config.listenHost, plan.ports, config.home);
  const unlock = plan.lockHome ? await lockHome(config.home) : async () => undefined;
  let built: ServedRole | undefined;
  try {
    const start = async () => {
      const role = await build(logger, abort.signal);
      built = role;
      try {
        return { role, banner: await role.listen() };
      } catch (error) {
        await role.stop();
        throw await explainListenError(config, plan, error);
      }
    };
    const starting = start();
    const started = await Promise.race([starting, stopped.then(() => undefined)]);
    if (!started) {
      // A signal during start. A role may be waiting on something that never answers (a broker's cluster bus at an
      // unreachable REDIS_URL): what was built is stopped, within a bound, and the command ends either way.
      const signal = await stopped;
      logger.info({ signal }, 'interrupted while starting; stopping');
      // Built and listening: stopped now. Still building: the build sees the aborted signal and ends its waits.
      const role = built ?? (await settleWithin(starting.then((s) => s.role, () => undefined), INTERRUPTED_START_GRACE_MS));
      if (role) await settleWithin(role.stop().catch((error: unknown) => logger.warn({ err: error }, 'error while stopping an interrupted start')), INTERRUPTED_START_GRACE_MS);
      throw new StartInterrupted(signal);
    }
    note(started.banner);
    const signal = await Promise.race([stopped, started.role.failed ?? stopped]).catch(async (error: unknown) => {
      logger.info('shutting down after a fatal error');
      await started.role.stop();
      throw error;
    });
    logger.info({ signal }, 'shutting down');
    await started.role.stop();
    logger.info({ signal }, 'stopped');
  } finally {
    await unlock();
  }
}

const httpsPort = (config: Readonly<Config>): PortToCheck => ({ port: config.httpsPort, setting: 'HTTPS_PORT' });
const mqttsPort = (config: Readonly<Config>): PortToCheck => ({ port: config.mqttsPort, setting: 'MQTTS_PORT' });

/** How a second process reaches the embedded Postgres, without printing its password (it stays in pg.secret). */
function embeddedDatabaseUrl(config: Readonly<Config>, databaseUrl: string): string {
  const url = new URL(databaseUrl);
  return `DATABASE_URL="postgres://${url.username}:$(cat ${path.join(config.home, 'pg.secret')})@${url.host}${url.pathname}"`;
}

export function upCommand(config: Readonly<Config>): Promise<void> {
  return serve(config, { ports: [httpsPort(config), mqttsPort(config)], lockHome: true }, async (logger, signal) => {
    const up = await buildUp(config, logger, signal);
    return {
      stop: () => up.stop(),
      failed: up.failed,
      async listen() {
        const endpoints = await up.listen();
        const mqttUrl = `mqtts://localhost:${endpoints.mqttsPort}`;
        logger.info(
          { ...endpoints, mqttUrl, rootCa: config.paths.rootCert, adminTokenFile: config.paths.adminTokenFile, embeddedPostgres: up.embeddedPostgres },
          'enrolld ready',
        );
        const database = up.embeddedPostgres
          ? `
    Postgres     embedded, data in ${path.join(config.home, 'pg')}; \`enrolld broker\` or \`enrolld worker\` beside it needs
                 ${embeddedDatabaseUrl(config, up.databaseUrl)}`
          : '';
        return `
  enrolld is up
    API          ${endpoints.apiUrl}
    MQTT         ${mqttUrl}   (devices connect with their certificate)
    root CA      ${config.paths.rootCert}   (devices trust this)
    admin token  ${config.paths.adminTokenFile}   ${config.adminBearer ? '(the CLI reads it)' : '(refused: ADMIN_BEARER=off; admins use certificates)'}${database}
  Ctrl-C stops it.`;
      },
    };
  });
}

export function apiCommand(config: Readonly<Config>): Promise<void> {
  return serve(config, { ports: [httpsPort(config)], lockHome: false }, async (logger, signal) => {
    const api = await buildApi(config, logger, signal);
    return {
      stop: () => api.stop(),
      async listen() {
        const { url } = await api.listen();
        logger.info({ role: 'api', apiUrl: url }, 'enrolld ready');
        return `enrolld api: ${url}; Ctrl-C stops it`;
      },
    };
  });
}

export function brokerCommand(config: Readonly<Config>): Promise<void> {
  const httpPort: PortToCheck = { port: config.brokerHttp.port, setting: 'BROKER_HTTP_PORT', host: config.brokerHttp.host };
  return serve(config, { ports: [mqttsPort(config), httpPort], lockHome: false }, async (logger) => {
    const built = await buildBroker(config, logger);
    return {
      stop: () => built.stop(),
      async listen() {
        const { port, httpPort: http } = await built.listen();
        const httpUrl = `http://${config.brokerHttp.host}:${http}`;
        logger.info({ role: 'broker', mqttsPort: port, httpPort: http, httpUrl }, 'enrolld ready');
        return `enrolld broker: mqtts on ${config.listenHost}:${port}, health and metrics on ${httpUrl} (/healthz, /readyz, /metrics); Ctrl-C stops it`;
      },
    };
  });
}

export function workerCommand(config: Readonly<Config>): Promise<void> {
  return serve(config, { ports: [], lockHome: false }, async (logger, signal) => {
    const worker = await buildWorker(config, logger, signal);
    return {
      stop: () => worker.stop(),
      async listen() {
        worker.listen();
        logger.info({ jobsPrefix: worker.jobsPrefix }, 'enrolld worker ready');
        return 'enrolld worker: rotation jobs running; Ctrl-C stops it';
      },
    };
  });
}

export async function caInitCommand(config: Readonly<Config>): Promise<void> {
  await checkHome(config.home);
  const created = await initPki(config.home, { serverNames: config.serverNames });
  const p = pkiPaths(config.home);
  note(created ? `created the CA under ${p.caDir}\n  trust anchor for devices: ${p.rootCert}` : `a CA already exists under ${p.caDir}; nothing changed`);
}
