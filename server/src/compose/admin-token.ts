import { readFile, writeFile } from 'node:fs/promises';
import { hashSecret, newAdminToken } from '@enrolld/core/secrets.js';

interface AdminCredentials {
  ensure(name: string, tokenHash: Buffer): Promise<boolean>;
}

/**
 * The first admin credential: created at init, stored hashed, its raw value written once to
 * ENROLLD_HOME/admin-token (0600) for the CLI. If the file exists (e.g. a fresh database), its hash is registered.
 */
export async function ensureAdminToken(file: string, store: AdminCredentials): Promise<{ created: boolean }> {
  let token: string;
  let created = false;
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    token = newAdminToken();
    await writeFile(file, token + '\n', { mode: 0o600, flag: 'wx' });
    created = true;
  }
  await store.ensure(`admin-${hashSecret(token).subarray(0, 4).toString('hex')}`, hashSecret(token));
  return { created };
}
