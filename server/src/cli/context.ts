import { readFile } from 'node:fs/promises';
import type { Config } from '../config.js';
import { loadConfig } from '../config.js';
import { createApiClient, readAdminToken, type AdminCredential, type ApiClient } from './api-client.js';
import { UsageError } from './usage-error.js';

export interface CliContext {
  config: Readonly<Config>;
  /** An admin API client: ENROLLD_URL (default https://localhost:HTTPS_PORT), trusting ENROLLD_HOME/ca/root.pem. */
  adminApi(): Promise<ApiClient>;
}

/** The root command's --cert and --key (program.ts records them before any action runs). */
export interface AdminCertificateFlags {
  cert?: string | undefined;
  key?: string | undefined;
}

let rootFlags: AdminCertificateFlags = {};

export function setAdminCertificateFlags(flags: AdminCertificateFlags): void {
  rootFlags = { cert: flags.cert, key: flags.key };
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
}

/**
 * What the admin commands present, first found wins: --cert/--key; ENROLLD_HOME/admin.pem with ENROLLD_HOME/admin.key;
 * the bearer token in ENROLLD_HOME/admin-token. A certificate goes alone, so the API sees the admin it names.
 */
export async function adminCredential(config: Readonly<Config>, flags: AdminCertificateFlags): Promise<AdminCredential> {
  if (flags.cert !== undefined || flags.key !== undefined) {
    if (flags.cert === undefined || flags.key === undefined) throw new UsageError('--cert and --key go together: give both');
    const [certPem, keyPem] = await Promise.all([readIfPresent(flags.cert), readIfPresent(flags.key)]);
    if (certPem === undefined) throw new UsageError(`--cert ${flags.cert}: no such file`);
    if (keyPem === undefined) throw new UsageError(`--key ${flags.key}: no such file`);
    return { clientCertificate: { certPem, keyPem } };
  }
  const [certPem, keyPem] = await Promise.all([readIfPresent(config.paths.adminCert), readIfPresent(config.paths.adminKey)]);
  if (certPem !== undefined && keyPem !== undefined) return { clientCertificate: { certPem, keyPem } };
  if (certPem !== undefined || keyPem !== undefined) {
    const [found, missing] = certPem !== undefined ? [config.paths.adminCert, config.paths.adminKey] : [config.paths.adminKey, config.paths.adminCert];
    throw new Error(`found ${found} but not ${missing}: an admin certificate needs both (or remove it to use the admin token)`);
  }
  return { adminToken: await readAdminToken(config.paths.adminTokenFile) };
}

export function createCliContext(env: NodeJS.ProcessEnv = process.env, flags: AdminCertificateFlags = rootFlags): CliContext {
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
      return createApiClient({ baseUrl, caPem, ...(await adminCredential(config, flags)) });
    },
  };
}
