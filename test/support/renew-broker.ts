// A second broker node on the same database as a test server (as `enrolld broker` runs it): it learns revocations
// only through NOTIFY and the seq resync, never in-process, so a cut there proves the fan-out.
import { readFile } from 'node:fs/promises';
import { createPool } from '@enrolld/db';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { pkiPaths } from '../../server/src/pki-home.js';
import { createBrokerRuntime, rootArlPath } from '../../server/src/revocation-runtime.js';

export async function startSecondBroker(server: { home: string; databaseUrl: string }): Promise<{ port: number; stop(): Promise<void> }> {
  const p = pkiPaths(server.home);
  const read = (file: string) => readFile(file, 'utf8');
  const [serverKeyPem, serverCertPem, rootPem, issuingCertPem, rootArlPem] = await Promise.all([
    read(p.serverKey), read(p.serverCert), read(p.rootCert), read(p.issuingCert), read(rootArlPath(p.caDir)),
  ]);
  const pool = createPool({ connectionString: server.databaseUrl, max: 2, applicationName: 'test-second-broker' });
  const broker = createBrokerRuntime({
    pool,
    databaseUrl: server.databaseUrl,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
    material: { serverKeyPem, serverCertPem, chainPem: issuingCertPem + rootPem, issuingCertPem, rootArlPem },
    config: { host: '127.0.0.1', port: 0, resyncIntervalMs: 1000 },
  });
  const { port } = await broker.start();
  return {
    port,
    async stop() {
      await broker.stop();
      await pool.end();
    },
  };
}
