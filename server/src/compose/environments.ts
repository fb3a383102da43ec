// The environments of a process that signs (docs/architecture.md §5): the API and the worker get each environment's
// issuing CA from here, and the API records the chain of `default` (its home's CA) in Postgres.
import type { Logger } from 'pino';
import type pg from 'pg';
import { createPgEnvironmentStore } from '@enrolld/db';
import type { IssuingCa } from '@enrolld/core/ca/types.js';
import type { EnvironmentCaFactory, IssuingCas } from '@enrolld/core/environments/ports.js';
import type { Config } from '../config.js';
import { createEnvironmentCaFactory, createIssuingCas, pkiPaths, renewEnvironmentServerCertificates, type PkiHome } from './pki-home.js';

/**
 * The environments of a process that signs (API, worker): `default`'s chain recorded in Postgres (an API only; a home
 * whose CA is not the recorded one is refused), the TLS certificates of this home's environment brokers renewed, and
 * each environment's issuing CA, loaded from this home when first needed.
 */
export async function prepareEnvironments(
  config: Readonly<Config>,
  logger: Logger,
  pool: pg.Pool,
  pki: Pick<PkiHome, 'ca' | 'issuingCertPem' | 'rootCertPem'>,
  options: { recordDefault: boolean },
): Promise<{ cas: IssuingCas; caFactory: EnvironmentCaFactory; defaultCa: IssuingCa }> {
  const store = createPgEnvironmentStore(pool);
  if (options.recordDefault) {
    const recorded = await store.recordDefaultChain({ issuingCertificatePem: pki.issuingCertPem, rootCertificatePem: pki.rootCertPem });
    if (recorded.outcome === 'mismatch') {
      throw new Error(
        `${pkiPaths(config.home).caDir} holds another CA than the one this database was made with (environment "default"): ` +
          'point ENROLLD_HOME at the home that created it (copy its ca/ and envs/ directories), or DATABASE_URL at a database of its own',
      );
    }
    const renewed = await renewEnvironmentServerCertificates(config.home, { serverNames: config.serverNames });
    if (renewed.length > 0) logger.info({ environments: renewed, serverNames: config.serverNames }, 'issued new broker server certificates');
  }
  return {
    cas: createIssuingCas(config.home, { defaultCa: pki.ca, environments: store }),
    caFactory: createEnvironmentCaFactory(config.home, { serverNames: config.serverNames }),
    defaultCa: pki.ca,
  };
}

