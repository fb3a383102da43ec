import { EnrollError } from './errors.js';
import type { AdminCredentialStore } from './ports.js';
import { hashSecret } from './secrets.js';

export interface AdminPrincipal {
  name: string;
}

/** Resolves a bearer credential to an admin, or throws one 401 for every kind of failure. */
export function createAdminAuthenticator(store: AdminCredentialStore) {
  return async (bearer: string | undefined): Promise<AdminPrincipal> => {
    if (!bearer) throw new EnrollError('unauthorized', 'admin credential required', { logDetail: 'missing' });
    const found = await store.findByHash(hashSecret(bearer));
    if (!found) throw new EnrollError('unauthorized', 'admin credential required', { logDetail: 'unknown' });
    return { name: found.name };
  };
}
