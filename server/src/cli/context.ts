import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import { loadConfig } from '../config.js';
import { createApiClient, readAdminToken, type ApiClient } from './api-client.js';

export interface CliContext {
  config: Readonly<Config>;
  /** An admin API client: ENROLLD_URL (default https://localhost:HTTPS_PORT), trusting ENROLLD_HOME/ca/root.pem. */
  adminApi(): Promise<ApiClient>;
}

export function createCliContext(env: NodeJS.ProcessEnv = process.env): CliContext {
  const config = loadConfig(env);
  return {
    config,
    async adminApi() {
      const baseUrl = env.ENROLLD_URL ?? `https://localhost:${config.httpsPort || 8443}`;
      let caPem: string;
      try {
        caPem = await readFile(config.paths.rootCert, 'utf8');
      } catch {
        throw new Error(`cannot read the root CA at ${config.paths.rootCert} (run \`enrolld up\` or \`enrolld ca init\` first, or set ENROLLD_HOME)`);
      }
      return createApiClient({ baseUrl, caPem, adminToken: await readAdminToken(config.paths.adminTokenFile) });
    },
  };
}
