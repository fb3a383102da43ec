import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './device-id.js';
import { enrollResponseSchema, serialSchema } from './schemas.js';

// Admins of the admin API (docs/architecture.md §9c). An admin is an identity of kind `admin`
// (urn:enrolld:admin:<name>) with a client certificate from the built-in `admin` profile; its role is kept in the
// admin record in Postgres, not in the certificate, so it changes at once and without a new certificate.

/** Each role may do what the ones before it may: viewer reads; operator also creates tokens and revokes; owner also
 *  manages profiles, environments and admins. */
export const ADMIN_ROLES = ['viewer', 'operator', 'owner'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

export const adminRoleSchema = z.enum(ADMIN_ROLES);

/** Whether an admin holding `held` may use a route that needs `required`. */
export function roleAllows(held: AdminRole, required: AdminRole): boolean {
  return ADMIN_ROLES.indexOf(held) >= ADMIN_ROLES.indexOf(required);
}

export const adminNameSchema = z.string().regex(DEVICE_ID_PATTERN, 'admin name must match ^[a-z0-9][a-z0-9._-]{0,62}$');

/** POST /v1/admin/admins: an admin record with its role, and its certificate signed from the caller's CSR. */
export const createAdminRequestSchema = z.object({
  name: adminNameSchema,
  role: adminRoleSchema,
  csr: z.string().min(1),
  /** An admin whose certificate is live gets another one only with `replace` (the old one stays valid until it expires or is revoked). */
  replace: z.boolean().optional(),
}).strict();
export type CreateAdminRequest = z.infer<typeof createAdminRequestSchema>;

export const createAdminResponseSchema = enrollResponseSchema.extend({ role: adminRoleSchema });
export type CreateAdminResponse = z.infer<typeof createAdminResponseSchema>;

/** PUT /v1/admin/admins/:name/role */
export const setAdminRoleRequestSchema = z.object({ role: adminRoleSchema }).strict();

export const adminSchema = z.object({
  name: z.string(),
  role: adminRoleSchema,
  /** `revoked`: `enrolld admin revoke` ended it; its certificates are revoked and the record grants nothing. */
  status: z.enum(['active', 'revoked']),
  createdAt: z.string(),
  createdBy: z.string(),
  updatedAt: z.string(),
  updatedBy: z.string(),
  /** Its newest live certificate (issued, unrevoked, unexpired), if it has one. */
  currentSerial: serialSchema.nullable(),
  notAfter: z.string().nullable(),
});
export type AdminBody = z.infer<typeof adminSchema>;
export const adminListResponseSchema = z.object({ admins: z.array(adminSchema) });
export type AdminListResponse = z.infer<typeof adminListResponseSchema>;

/** How a request was authenticated as an admin. */
export const ADMIN_CREDENTIALS = ['bearer', 'certificate'] as const;

/** GET /v1/admin/whoami: who the API takes the caller for. */
export const whoamiResponseSchema = z.object({
  /** As the audit trail names it: `cert:<name>` or `bearer:<credential name>`. */
  actor: z.string(),
  role: adminRoleSchema,
  credential: z.enum(ADMIN_CREDENTIALS),
});
export type WhoamiResponse = z.infer<typeof whoamiResponseSchema>;
