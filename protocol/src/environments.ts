import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './device-id.js';

// Environments (docs/architecture.md §5): each one has its own issuing CA, under the shared root or a root of its own,
// and every token, profile, device and service belongs to exactly one. A broker serves one environment and trusts only
// its issuing CA, so a development certificate cannot reach production. `default` exists from the first migration on.

export const DEFAULT_ENVIRONMENT = 'default';

/** Environment names follow the identity rule. */
export const environmentNameSchema = z.string().regex(DEVICE_ID_PATTERN, 'environment name must match ^[a-z0-9][a-z0-9._-]{0,62}$');

/** `?env=` on the routes that serve one environment's material (CA chain, CRL) or take one (lists, searches). */
export const environmentQuerySchema = z.object({ env: environmentNameSchema.default(DEFAULT_ENVIRONMENT) });

/** POST /v1/admin/environments. */
export const createEnvironmentRequestSchema = z.object({
  name: environmentNameSchema,
  /** A root of its own instead of an issuing CA under the shared root: its devices trust nothing the others trust. */
  ownRoot: z.boolean().optional(),
}).strict();
export type CreateEnvironmentRequest = z.infer<typeof createEnvironmentRequestSchema>;

export const environmentSchema = z.object({
  name: z.string(),
  ownRoot: z.boolean(),
  /** The environment's chain, issuing CA then root (PEM): what its devices and brokers trust. */
  chain: z.string(),
  /** SHA-256 fingerprints (hex) of its issuing CA and root. */
  issuingFingerprint: z.string(),
  rootFingerprint: z.string(),
  createdAt: z.string(),
  createdBy: z.string(),
});
export type EnvironmentBody = z.infer<typeof environmentSchema>;

export const environmentListResponseSchema = z.object({ environments: z.array(environmentSchema) });
export type EnvironmentListResponse = z.infer<typeof environmentListResponseSchema>;
