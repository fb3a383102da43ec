// Who is calling the admin API (docs/architecture.md §9c): an admin bearer credential, which acts as `owner`, or an
// admin client certificate on the TLS connection, whose role is its admin record's. Every failure to authenticate is
// one 401; a certificate of ours that names a device or a service is a 403 (it is someone, just not an admin).
import { X509Certificate } from 'node:crypto';
import type { AdminRole } from '@enrolld/protocol';
import type { Clock } from './clock.js';
import { verifyIssuedBy } from './ca/issued-by.js';
import { EnrollError } from './errors.js';
import type { AdminCredentialStore } from './ports.js';
import type { AdminStore } from './admins/ports.js';
import { normalizeSerial } from './revocation/serial.js';
import { hashSecret } from './secrets.js';

export interface AdminPrincipal {
  /** As the audit trail names the admin: `cert:<name>` or `bearer:<credential name>`. */
  actor: string;
  role: AdminRole;
  credential: 'bearer' | 'certificate';
  /** The admin's name (certificate) or the credential's (bearer). */
  name: string;
}

export interface AdminAuthenticatorDeps {
  credentials: AdminCredentialStore;
  admins: Pick<AdminStore, 'certificate'>;
  /** The issuing CA certificate (DER): a client certificate it did not sign proves nothing here. */
  issuingCaDer: Buffer;
  clock: Clock;
  /** ADMIN_BEARER: false turns bearer credentials off (certificate-only installations). */
  bearerEnabled: boolean;
}

export type AdminAuthenticator = ReturnType<typeof createAdminAuthenticator>;

const REQUIRED = 'admin credential required: an admin bearer token or an admin client certificate';

export function createAdminAuthenticator(deps: AdminAuthenticatorDeps) {
  const issuer = new X509Certificate(deps.issuingCaDer);
  const refused = (logDetail: string, detail = REQUIRED) => new EnrollError('unauthorized', detail, { logDetail });

  return {
    bearerEnabled: deps.bearerEnabled,

    /** A bearer credential (Authorization: Bearer …, or the console's sign-in form): the owner role. */
    async bearer(token: string | undefined): Promise<AdminPrincipal> {
      if (!deps.bearerEnabled) {
        throw refused('bearer disabled', 'admin bearer tokens are disabled on this server (ADMIN_BEARER=off): authenticate with an admin client certificate');
      }
      if (!token) throw refused('missing');
      const found = await deps.credentials.findByHash(hashSecret(token));
      if (!found) throw refused('unknown');
      return { actor: `bearer:${found.name}`, role: 'owner', credential: 'bearer', name: found.name };
    },

    /**
     * The client certificate of the TLS connection: signed by this CA, stored byte for byte under its serial, issued,
     * unrevoked, inside its validity, of an admin identity whose record is active. The record gives the role.
     */
    async certificate(der: Buffer | undefined): Promise<AdminPrincipal> {
      if (!der) throw refused('no credential');
      const verified = verifyIssuedBy(der, issuer);
      if (!verified.ok) throw refused(`client certificate ${verified.reason}`);
      const serial = normalizeSerial(verified.certificate.serialNumber);
      const stored = await deps.admins.certificate(serial);
      if (!stored || !stored.der?.equals(der)) throw refused(`certificate ${serial} is not on record`);
      if (stored.kind !== 'admin') {
        throw new EnrollError('forbidden', `a ${stored.kind} certificate cannot use the admin API; it needs an admin certificate (enrolld admin create)`, {
          logDetail: `${stored.kind} ${stored.name} (serial ${serial}) at the admin API`,
        });
      }
      const now = deps.clock.now().getTime();
      if (stored.revokedAt) throw refused(`admin certificate ${serial} of ${stored.name} is revoked`, `the admin certificate ${serial} is revoked`);
      // RFC 5280 §4.1.2.5: both ends inclusive.
      if (now > stored.notAfter.getTime() || now < stored.notBefore.getTime()) {
        throw refused(`admin certificate ${serial} of ${stored.name} is outside its validity`, `the admin certificate ${serial} is not valid now (notAfter ${stored.notAfter.toISOString()})`);
      }
      if (!stored.admin || stored.admin.revoked) throw refused(`admin ${stored.name} has no active record`, `${stored.name} is no longer an admin`);
      return { actor: `cert:${stored.name}`, role: stored.admin.role, credential: 'certificate', name: stored.name };
    },
  };
}
