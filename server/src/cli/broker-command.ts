import { readFile } from 'node:fs/promises';
import { createPool, migrate } from '@enrolld/db';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { pkiPaths } from '../pki-home.js';
import { createBrokerRuntime, rootArlPath } from '../revocation-runtime.js';
import { note } from './output.js';

export const BROKER_USAGE = `enrolld broker                              the MQTT broker alone (needs DATABASE_URL and the ENROLLD_HOME of an \`enrolld up\`)`;

async function readMaterial(config: Readonly<Config>) {
  const p = pkiPaths(config.home);
  const read = (file: string) =>
    readFile(file, 'utf8').catch(() => {
      throw new Error(`cannot read ${file}: run \`enrolld up\` once with this ENROLLD_HOME first (it creates the CA, the server certificate and the root CRL)`);
    });
  // Only the server's own key: a broker never holds a CA key (DESIGN.md §1).
  const [serverKeyPem, serverCertPem, rootPem, issuingCertPem, rootArlPem] = await Promise.all([
    read(p.serverKey),
    read(p.serverCert),
    read(p.rootCert),
    read(p.issuingCert),
    read(rootArlPath(p.caDir)),
  ]);
  return { serverKeyPem, serverCertPem, chainPem: issuingCertPem + rootPem, issuingCertPem, rootArlPem };
}

/** `enrolld broker`: the broker in its own process, fed by the same NOTIFY channel and seq resync as in `enrolld up`. */
export async function brokerCommand(config: Readonly<Config>): Promise<void> {
  if (!config.databaseUrl) throw new Error('enrolld broker needs DATABASE_URL (the Postgres the API uses)');
  const logger = createLogger(config.logLevel);
  const material = await readMaterial(config);
  const pool = createPool({ connectionString: config.databaseUrl, max: 4, applicationName: 'enrolld-broker' });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Migrations are idempotent and serialized by an advisory lock; the broker may start before the API.
  await migrate(pool).catch((error: unknown) => logger.warn({ err: error }, 'could not migrate (Postgres down?); refusing devices until the revocation state loads'));
  const broker = createBrokerRuntime({ pool, databaseUrl: config.databaseUrl, logger, registry, material, config: { host: config.listenHost, port: config.mqttsPort } });
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve(signal));
  });
  const { port } = await broker.start();
  note(`enrolld broker: mqtts on ${config.listenHost}:${port}; Ctrl-C stops it`);
  const signal = await stopped;
  logger.info({ signal }, 'shutting down');
  await broker.stop();
  await pool.end();
}
