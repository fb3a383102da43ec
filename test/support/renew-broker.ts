// A second broker node on the same database as a test server (as `enrolld broker` runs it): it learns revocations and
// issued certificates only through NOTIFY, the seq resyncs and the lookup of an unknown serial, never in-process, so
// a cut or an admission there proves the fan-out.
import { createPgProfileListener, createPgProfileStore, createPgRegistryListener, createPgRegistryStore, createPgRevocationStore, createPool } from '@enrolld/db';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { systemClock } from '@enrolld/core/clock.js';
import { readBrokerMaterial } from '../../server/src/compose/pki-home.js';
import { createBroker, defaultBrokerConfig } from '../../server/src/mqtt/broker.js';

export async function startSecondBroker(server: { home: string; databaseUrl: string }): Promise<{ port: number; resync(): Promise<void>; stop(): Promise<void> }> {
  const material = await readBrokerMaterial(server.home);
  const pool = createPool({ connectionString: server.databaseUrl, max: 2, applicationName: 'test-second-broker' });
  const broker = createBroker({
    config: { ...defaultBrokerConfig, host: '127.0.0.1', port: 0, resyncIntervalMs: 1000 },
    tls: {
      key: material.serverKeyPem,
      cert: material.serverCertPem,
      ca: material.chainPem,
      issuingCertificate: material.issuingCertPem,
    },
    store: { ...createPgRevocationStore(pool), ...createPgRegistryStore(pool) },
    feed: createPgRegistryListener({ connectionString: server.databaseUrl, applicationName: 'test-second-broker-listen' }),
    profiles: { source: createPgProfileStore(pool), feed: createPgProfileListener({ connectionString: server.databaseUrl }) },
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  try {
    const { port } = await broker.start();
    return {
      port,
      resync: () => broker.resync(),
      async stop() {
        await broker.stop();
        await pool.end();
      },
    };
  } catch (error) {
    await broker.stop();
    await pool.end();
    throw error;
  }
}
