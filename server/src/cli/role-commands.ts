// The commands that run a server role in this process (`up`, `api`, `broker`, `worker`) or create the CA (`ca init`).
// They load the whole server, so cli.ts imports this module only when one of them is asked for; the admin commands
// start without it.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { buildApi } from '../compose/api.js';
import { buildBroker } from '../compose/broker.js';
import { initPki, pkiPaths } from '../compose/pki-home.js';
import { buildUp } from '../compose/up.js';
import { buildWorker } from '../compose/worker.js';
import { note } from './output.js';


/** A built role: listen() starts it and returns the banner to print; stop() also works after a failed listen(). */
interface ServedRole {
  listen(): Promise<string>;
  stop(): Promise<void>;
  /** Rejects when the role can no longer run (its embedded Postgres stayed down): it is stopped and the command fails. */
  failed?: Promise<never>;
}

/** Resolves with the first SIGINT/SIGTERM. Registered before anything starts, so a Ctrl-C during start is not lost. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });
}

/** Builds a role, listens, runs until a signal, then stops it in order. */
async function serve(config: Readonly<Config>, build: (logger: Logger, signal: AbortSignal) => Promise<ServedRole>): Promise<void> {
  const logger = createLogger(config.logLevel);
  const abort = new AbortController();
  const stopped = untilSignal();
  void stopped.then(() => abort.abort());
  const start = async () => {
    const role = await build(logger, abort.signal);
    try {
      return { role, banner: await role.listen() };
    } catch (error) {
      await role.stop();
      throw error;
    }
  };
  const started = await Promise.race([start(), stopped.then(() => undefined)]);
  if (!started) return;
  note(started.banner);
  const signal = await Promise.race([stopped, started.role.failed ?? stopped]).catch(async (error: unknown) => {
    logger.info('shutting down after a fatal error');
    await started.role.stop();
    throw error;
  });
  logger.info({ signal }, 'shutting down');
  await started.role.stop();
  logger.info('stopped');
}

export function upCommand(config: Readonly<Config>): Promise<void> {
  return serve(config, async (logger, signal) => {
    const up = await buildUp(config, logger, signal);
    return {
      stop: () => up.stop(),
      failed: up.failed,
      async listen() {
        const endpoints = await up.listen();
        logger.info(
          { ...endpoints, rootCa: config.paths.rootCert, adminTokenFile: config.paths.adminTokenFile, embeddedPostgres: up.embeddedPostgres },
          'enrolld ready',
        );
        return `
  enrolld is up
    API          ${endpoints.apiUrl}
    root CA      ${config.paths.rootCert}   (devices trust this)
    admin token  ${config.paths.adminTokenFile}   (the CLI reads it)
  Ctrl-C stops it.`;
      },
    };
  });
}

export function apiCommand(config: Readonly<Config>): Promise<void> {
  return serve(config, async (logger, signal) => {
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
  return serve(config, async (logger) => {
    const built = await buildBroker(config, logger);
    return {
      stop: () => built.stop(),
      async listen() {
        const { port } = await built.listen();
        return `enrolld broker: mqtts on ${config.listenHost}:${port}; Ctrl-C stops it`;
      },
    };
  });
}

export function workerCommand(config: Readonly<Config>): Promise<void> {
  return serve(config, async (logger, signal) => {
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
  const created = await initPki(config.home, { serverNames: config.serverNames });
  const p = pkiPaths(config.home);
  note(created ? `created the CA under ${p.caDir}\n  trust anchor for devices: ${p.rootCert}` : `a CA already exists under ${p.caDir}; nothing changed`);
}
