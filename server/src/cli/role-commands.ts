// The commands that run a server role in this process (`up`, `api`, `broker`, `worker`) or create the CA (`ca init`).
// They load the whole server, so cli.ts imports this module only when one of them is asked for; the admin commands
// start without it.
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { buildApi } from '../compose/api.js';
import { buildBroker } from '../compose/broker.js';
import { initPki, pkiPaths } from '../compose/pki-home.js';
import { buildUp } from '../compose/up.js';
import { buildWorker } from '../compose/worker.js';
import { note } from './output.js';


type Stoppable = { stop(): Promise<void> };

/** Resolves with the first SIGINT/SIGTERM. Registered before anything starts, so a Ctrl-C during start is not lost. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });
}

/** Runs a built role until a signal, then stops it in order. */
async function serve(config: Readonly<Config>, start: (signal: AbortSignal) => Promise<{ service: Stoppable; banner: string }>): Promise<void> {
  const logger = createLogger(config.logLevel);
  const abort = new AbortController();
  const stopped = untilSignal();
  void stopped.then(() => abort.abort());
  const started = await Promise.race([start(abort.signal), stopped.then(() => undefined)]);
  if (!started) return;
  note(started.banner);
  const signal = await stopped;
  logger.info({ signal }, 'shutting down');
  await started.service.stop();
  logger.info('stopped');
}

export async function upCommand(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel);
  await serve(config, async (signal) => {
    const up = await buildUp(config, logger, signal);
    try {
      const endpoints = await up.listen();
      logger.info(
        { apiUrl: endpoints.apiUrl, httpsPort: endpoints.httpsPort, mqttsPort: endpoints.mqttsPort, rootCa: config.paths.rootCert, adminTokenFile: config.paths.adminTokenFile, embeddedPostgres: up.embeddedPostgres },
        'enrolld ready',
      );
      return {
        service: up,
        banner: `
  enrolld is up
    API          ${endpoints.apiUrl}
    root CA      ${config.paths.rootCert}   (devices trust this)
    admin token  ${config.paths.adminTokenFile}   (the CLI reads it)
  Ctrl-C stops it.`,
      };
    } catch (error) {
      await up.stop();
      throw error;
    }
  });
}

export async function apiCommand(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel);
  await serve(config, async (signal) => {
    const api = await buildApi(config, logger, signal);
    try {
      const { url } = await api.listen();
      logger.info({ apiUrl: url }, 'enrolld api ready');
      return { service: api, banner: `enrolld api: ${url}; Ctrl-C stops it` };
    } catch (error) {
      await api.stop();
      throw error;
    }
  });
}

export async function brokerCommand(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel);
  await serve(config, async () => {
    const built = await buildBroker(config, logger);
    try {
      const { port } = await built.listen();
      return { service: built, banner: `enrolld broker: mqtts on ${config.listenHost}:${port}; Ctrl-C stops it` };
    } catch (error) {
      await built.stop();
      throw error;
    }
  });
}

export async function workerCommand(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel);
  await serve(config, async (signal) => {
    const worker = await buildWorker(config, logger, signal);
    worker.listen();
    logger.info({ jobsPrefix: worker.jobsPrefix }, 'enrolld worker ready');
    return { service: worker, banner: 'enrolld worker: rotation jobs running; Ctrl-C stops it' };
  });
}

export async function caInitCommand(config: Readonly<Config>): Promise<void> {
  const created = await initPki(config.home, { serverNames: config.serverNames });
  const p = pkiPaths(config.home);
  note(created ? `created the CA under ${p.caDir}\n  trust anchor for devices: ${p.rootCert}` : `a CA already exists under ${p.caDir}; nothing changed`);
}
