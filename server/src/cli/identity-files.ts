import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EnrollResponse } from '@enrolld/protocol';
import type { ApiClient } from './api-client.js';
import type { CliContext } from './context.js';
import { serviceCsr } from './service-csr.js';
import { UsageError } from './usage-error.js';

// The certificate files of `enrolld service create` and `enrolld admin create`: the key is made here and never leaves
// this machine (with --csr the caller keeps its own key and only the certificate is written); the API signs the CSR.

export interface IdentityFileOptions {
  out: string;
  csr?: string | undefined;
}

/** Where the files of `name` go: <out>/<name>.key (0600, unless --csr) and <out>/<name>.pem (certificate then chain). */
export const identityFiles = (out: string, name: string) => ({ key: join(out, `${name}.key`), pem: join(out, `${name}.pem`) });

async function csrOf(name: string, options: IdentityFileOptions): Promise<{ csr: string; keyPem?: string }> {
  if (options.csr === undefined) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return { csr: serviceCsr(name, publicKey, privateKey).toString('base64'), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }
  try {
    const bytes = await readFile(options.csr);
    return { csr: bytes.includes('-----BEGIN') ? bytes.toString('utf8') : bytes.toString('base64') };
  } catch (error) {
    throw new UsageError(`cannot read --csr ${options.csr}: ${(error as Error).message}`);
  }
}

/** Makes the key and CSR, has `issue` sign it over the admin API, and writes the files. */
export async function writeIdentityCertificate<T extends EnrollResponse>(
  name: string,
  options: IdentityFileOptions,
  ctx: CliContext,
  issue: (api: ApiClient, csr: string) => Promise<T>,
): Promise<T> {
  const { csr, keyPem } = await csrOf(name, options);
  const api = await ctx.adminApi();
  try {
    const issued = await issue(api, csr);
    const files = identityFiles(options.out, name);
    await mkdir(options.out, { recursive: true });
    if (keyPem !== undefined) await writeFile(files.key, keyPem, { mode: 0o600 });
    await writeFile(files.pem, issued.certificate + issued.chain);
    return issued;
  } finally {
    api.close();
  }
}
