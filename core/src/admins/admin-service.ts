import { BUILTIN_PROFILES, type AdminRole, type CreateAdminRequest, type CreateAdminResponse, type RevokeResponse } from '@enrolld/protocol';
import { EnrollError } from '../errors.js';
import { issueIdentityCertificate, type IdentityCertificateDeps } from '../profiles/service-identities.js';
import { reasonCode, type RevocationService } from '../revocation/revocation-service.js';
import type { AdminRecord, AdminStore } from './ports.js';

// The admin use cases behind `enrolld admin …` (docs/architecture.md §9c): create an admin and its certificate, list
// them, change a role, revoke one. The role is in the admin record, so a change needs no new certificate; a revoke
// ends the record first (the API refuses the admin from that commit on) and then revokes its certificates through
// the one revoke use case (audit rows, CRL). Without the bearer token (ADMIN_BEARER=off) nothing else can act as
// owner, so the last active owner with a live certificate can be neither demoted nor revoked.

export interface AdminServiceDeps extends IdentityCertificateDeps {
  store: AdminStore;
  revocation: Pick<RevocationService, 'revokeDevice'>;
  /** ADMIN_BEARER: with the bearer token on, it remains an owner whatever happens to the certificates. */
  bearerEnabled: boolean;
}

const lastOwner = (name: string) =>
  new EnrollError('conflict', `${name} is the last owner with a live certificate and bearer tokens are off (ADMIN_BEARER=off); make another owner first`);

export function createAdminService(deps: AdminServiceDeps) {
  const options = { keepAnOwner: !deps.bearerEnabled };
  return {
    /**
     * A certificate for an admin (kind admin, the built-in admin profile) from the caller's CSR, then its record with
     * the role. A keyCompromise revocation of an earlier certificate needs no consent here: the token is spent at once
     * on the new key in the same call.
     */
    async create(request: CreateAdminRequest, actor: string, context: { requestId?: string | undefined } = {}): Promise<CreateAdminResponse> {
      const issued = await issueIdentityCertificate(
        deps,
        { kind: 'admin', name: request.name, profile: BUILTIN_PROFILES.admin, csr: request.csr, replace: request.replace, afterCompromise: true },
        actor,
        context,
      );
      await deps.store.activate(request.name, request.role, actor);
      return { ...issued, role: request.role };
    },

    list: (): Promise<AdminRecord[]> => deps.store.list(),

    async setRole(name: string, role: AdminRole, actor: string): Promise<void> {
      const result = await deps.store.setRole(name, role, actor, options);
      if (result.outcome === 'missing') throw new EnrollError('not-found', `no active admin ${name}`);
      if (result.outcome === 'last-owner') throw lastOwner(name);
    },

    /** Ends the admin, then revokes every unexpired certificate of it. Again on a revoked admin: revokes what is left. */
    async revoke(name: string, input: { reason: string; comment?: string | undefined }, actor: string, context: { requestId?: string | undefined } = {}): Promise<RevokeResponse> {
      reasonCode(input.reason); // a bad reason is refused before the record changes
      const marked = await deps.store.markRevoked(name, actor, options);
      if (marked.outcome === 'missing') throw new EnrollError('not-found', `no admin ${name}`);
      if (marked.outcome === 'last-owner') throw lastOwner(name);
      const result = await deps.revocation.revokeDevice(name, { ...input, actor, requestId: context.requestId, identities: 'admins' });
      return { deviceId: result.deviceId, outcome: result.outcome, reason: result.reason, serials: result.serials };
    },
  };
}

export type AdminService = ReturnType<typeof createAdminService>;
