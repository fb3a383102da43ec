import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './device-id.js';
import { REVOCATION_REASON_NAMES } from './reasons.js';

export const deviceIdSchema = z.string().regex(DEVICE_ID_PATTERN, 'device id must match ^[a-z0-9][a-z0-9._-]{0,62}$');

export const enrollRequestSchema = z.object({
  token: z.string().min(1).max(256),
  csr: z.string().min(1),
});
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const renewRequestSchema = z.object({ csr: z.string().min(1) });
export type RenewRequest = z.infer<typeof renewRequestSchema>;

export const enrollResponseSchema = z.object({
  deviceId: z.string(),
  serial: z.string(),
  certificate: z.string(),
  chain: z.string(),
  notAfter: z.string(),
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;

const MAX_TTL_SECONDS = 365 * 24 * 3600;

export const createTokenRequestSchema = z.union([
  z.object({
    deviceId: deviceIdSchema,
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
  }).strict(),
  z.object({
    prefix: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,50}$/, 'prefix must be a valid device id start of at most 51 chars'),
    count: z.number().int().min(1).max(100_000),
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
  }).strict(),
]);
export type CreateTokenRequest = z.infer<typeof createTokenRequestSchema>;

export const createdTokenSchema = z.object({ deviceId: z.string(), token: z.string(), expiresAt: z.string() });
export type CreatedToken = z.infer<typeof createdTokenSchema>;

export const revokeRequestSchema = z.object({
  reason: z.enum(REVOCATION_REASON_NAMES as [string, ...string[]]).default('unspecified'),
}).strict();
export type RevokeRequest = z.infer<typeof revokeRequestSchema>;
