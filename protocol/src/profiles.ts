import { z } from 'zod';
import { DEVICE_ID_PATTERN, IDENTITY_KINDS } from './device-id.js';

// Certificate profiles (docs/architecture.md §5): a named, versioned record that fixes an identity's kind, its
// certificate lifetime and renewal window, the key types it may certify, and its topic ACL, an ordered list of rules
// (first match decides; nothing matches → denied). Filters may use `+`, `#` and the placeholder `{id}` (the
// identity's own id) as a whole level. The stored document is JSON, so later members (per-profile broker limits
// under `limits`) need no schema migration.

/** Profile names follow the identity rule. */
export const profileNameSchema = z.string().regex(DEVICE_ID_PATTERN, 'profile name must match ^[a-z0-9][a-z0-9._-]{0,62}$');

/** The key types a profile may allow; `rsa` is any RSA key the key policy accepts (2048–4096 bits). */
export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/**
 * The profiles every installation has; they cannot be changed or deleted. `admin` is the only profile of admin
 * certificates (its ACL is empty: the broker refuses admin certificates at CONNECT).
 */
export const BUILTIN_PROFILES = { device: 'device', service: 'service', admin: 'admin' } as const;

export const aclRuleSchema = z.object({
  effect: z.enum(['allow', 'deny']),
  action: z.enum(['publish', 'subscribe']),
  filter: z.string().min(1).max(1024),
}).strict();
export type AclRule = z.infer<typeof aclRuleSchema>;

const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/** The body of `POST /v1/admin/profiles` and `PUT /v1/admin/profiles/:name`, and of the files `enrolld profile` reads. */
export const profileSpecSchema = z.object({
  name: profileNameSchema,
  kind: z.enum(IDENTITY_KINDS),
  description: z.string().max(500).optional(),
  /** Certificate lifetime; absent → the server's CERT_LIFETIME. */
  lifetimeSeconds: z.number().int().min(60).max(MAX_LIFETIME_SECONDS).optional(),
  /** Share of the lifetime, counted back from notAfter, in which renewal hints are sent; absent → RENEWAL_WINDOW_FRACTION. */
  renewalWindowFraction: z.number().gt(0).lt(1).optional(),
  /** Absent → every key type the key policy accepts. */
  keyTypes: z.array(z.enum(KEY_TYPES)).min(1).max(KEY_TYPES.length).optional(),
  acl: z.array(aclRuleSchema).max(256),
}).strict();
export type ProfileSpec = z.infer<typeof profileSpecSchema>;

export const profileSchema = profileSpecSchema.extend({
  version: z.number().int().positive(),
  builtin: z.boolean(),
  createdAt: z.string(),
});
export type Profile = z.infer<typeof profileSchema>;

export const profileListResponseSchema = z.object({ profiles: z.array(profileSchema) });
export type ProfileListResponse = z.infer<typeof profileListResponseSchema>;

/** POST /v1/admin/services: a service identity and its certificate, signed from the caller's CSR. */
export const createServiceRequestSchema = z.object({
  name: z.string().regex(DEVICE_ID_PATTERN, 'service name must match ^[a-z0-9][a-z0-9._-]{0,62}$'),
  profile: profileNameSchema.optional(),
  csr: z.string().min(1),
  /** A service whose certificate is live gets another one only with `replace`, as a device's token does. */
  replace: z.boolean().optional(),
}).strict();
export type CreateServiceRequest = z.infer<typeof createServiceRequestSchema>;
