import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { startEnrolld } from '../main.js';
import { note } from './output.js';

/** Runs until SIGINT/SIGTERM, then stops in order (servers, then pools, then embedded Postgres). */
export async function upCommand(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel);
  const abort = new AbortController();
  let stopping = false;
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });
  void stopped.then(() => abort.abort());
  const running = await Promise.race([startEnrolld(config, logger, abort.signal), stopped.then(() => undefined)]);
  if (!running) return;
  note(`
  enrolld is up
    API          ${running.apiUrl}
    root CA      ${config.paths.rootCert}   (devices trust this)
    admin token  ${config.paths.adminTokenFile}   (the CLI reads it)
  Ctrl-C stops it.`);
  const signal = await stopped;
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await running.stop();
  logger.info('stopped');
}
