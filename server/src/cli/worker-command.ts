import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { startRotationWorker } from '../rotation-runtime.js';
import { note } from './output.js';

export const WORKER_USAGE = `enrolld worker                              background jobs alone (rotation sweep, hints, grace supersession); run \`enrolld up\` with JOBS=off`;

/** `enrolld worker`: the BullMQ workers in their own process, until SIGINT/SIGTERM. Starts even while Redis is down. */
export async function workerCommand(config: Readonly<Config>): Promise<void> {
  const logger = createLogger(config.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });
  const worker = await startRotationWorker(config, logger, registry);
  note('enrolld worker: rotation jobs running; Ctrl-C stops it');
  const signal = await stopped;
  logger.info({ signal }, 'shutting down');
  await worker.stop();
  logger.info('stopped');
}
