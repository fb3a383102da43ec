import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './device-id.js';
import { REVOCATION_REASON_NAMES } from './reasons.js';
import { isCanonicalSerial } from './serial.js';

// The request and response bodies of every HTTP route (routes.ts), and the MQTT renewal payloads, as zod schemas:
// the server validates what it receives and types what it sends with them; the CLI and the simulator parse with them.

export const deviceIdSchema = z.string().regex(DEVICE_ID_PATTERN, 'device id must match ^[a-z0-9][a-z0-9._-]{0,62}$');

export const enrollRequestSchema = z.object({
  token: z.string().min(1).max(256),
  csr: z.string().min(1),
});
export type EnrollRequest = z.infer<typeof enrollRequestSchema>;

export const renewRequestSchema = z.object({ csr: z.string().min(1) });
export type RenewRequest = z.infer<typeof renewRequestSchema>;

/** A serial in its canonical form (serial.ts), as every response carries it. */
export const serialSchema = z.string().refine(isCanonicalSerial, 'serial must be lowercase minimal DER hex');

/** POST /v1/enroll, POST /v1/renew and MQTT …/cert/renew/accepted answer with the issued certificate. */
export const enrollResponseSchema = z.object({
  deviceId: z.string(),
  serial: serialSchema,
  certificate: z.string(),
  chain: z.string(),
  notAfter: z.string(),
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;
export const renewResponseSchema = enrollResponseSchema;
export type RenewResponse = EnrollResponse;

const MAX_TTL_SECONDS = 365 * 24 * 3600;

/**
 * What an admin allows when a token is made for an id that already has certificates: `replace` for an id whose
 * certificate is still live (the new enrollment will not revoke it), `afterCompromise` for an id whose last certificates
 * were revoked for keyCompromise. Without them such ids are refused (409), so a batch never re-issues an id by accident.
 */
const reissueConsent = {
  replace: z.boolean().optional(),
  afterCompromise: z.boolean().optional(),
};

export const createTokenRequestSchema = z.union([
  z.object({
    deviceId: deviceIdSchema,
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
    ...reissueConsent,
  }).strict(),
  z.object({
    prefix: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,50}$/, 'prefix must be a valid device id start of at most 51 chars'),
    count: z.number().int().min(1).max(100_000),
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
    ...reissueConsent,
  }).strict(),
]);
export type CreateTokenRequest = z.infer<typeof createTokenRequestSchema>;

/** How a token was issued: for an id with no certificate yet, for one that had certificates, after a keyCompromise. */
export const TOKEN_ISSUES = ['new', 're-issued', 'after-compromise'] as const;
export type TokenIssue = (typeof TOKEN_ISSUES)[number];

export const createdTokenSchema = z.object({ deviceId: z.string(), token: z.string(), expiresAt: z.string(), issuedAs: z.enum(TOKEN_ISSUES) });
export type CreatedToken = z.infer<typeof createdTokenSchema>;
/** POST /v1/admin/tokens answers with a list, one entry for a single device, `count` entries for a batch. */
export const createTokensResponseSchema = z.array(createdTokenSchema);
export type CreateTokensResponse = z.infer<typeof createTokensResponseSchema>;
/** The same answer as text/csv (RFC 4180), one header line naming these columns. */
export const CREATED_TOKEN_CSV_COLUMNS = ['deviceId', 'token', 'expiresAt', 'issuedAs'] as const satisfies ReadonlyArray<keyof CreatedToken>;

export const revokeRequestSchema = z.object({
  reason: z.enum(REVOCATION_REASON_NAMES as [string, ...string[]]).default('unspecified'),
}).strict();
export type RevokeRequest = z.infer<typeof revokeRequestSchema>;

export const revokeResponseSchema = z.object({
  deviceId: z.string(),
  /** Revoking twice is a no-op, not an error: 200 either way, told apart here. */
  outcome: z.enum(['revoked', 'already-revoked']),
  reason: z.enum(REVOCATION_REASON_NAMES as [string, ...string[]]),
  /**
   * The certificates this call revoked. Brokers refuse them from the answer on; no CRL number is given, because the CRL
   * that lists them is built after the answer (within CRL_MIN_INTERVAL) and GET /v1/crl serves it.
   */
  serials: z.array(serialSchema),
});
export type RevokeResponse = z.infer<typeof revokeResponseSchema>;

/** A certificate's state (pending: recorded, not signed yet); a device's is its newest issued certificate's. */
export const CERTIFICATE_STATUSES = ['pending', 'active', 'expired', 'revoked'] as const;
export const certificateStatusSchema = z.enum(CERTIFICATE_STATUSES);
export type CertificateStatus = z.infer<typeof certificateStatusSchema>;

/** GET /v1/admin/devices query; `after` is the last id of the previous page (keyset pagination). */
export const deviceListQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    after: z.string().max(63).optional(),
    status: certificateStatusSchema.optional(),
    prefix: z.string().max(63).optional(),
  })
  .strict();
export type DeviceListQuery = z.infer<typeof deviceListQuerySchema>;

export const deviceSummarySchema = z.object({
  id: z.string(),
  profile: z.string(),
  createdAt: z.string(),
  status: certificateStatusSchema,
  currentSerial: serialSchema.nullable(),
  notAfter: z.string().nullable(),
});
export type DeviceSummary = z.infer<typeof deviceSummarySchema>;

export const deviceListResponseSchema = z.object({
  devices: z.array(deviceSummarySchema),
  /** The `after` of the next page, null on the last one. */
  next: z.string().nullable(),
});
export type DeviceListResponse = z.infer<typeof deviceListResponseSchema>;

/** One certificate of a device; `predecessorSerial` links a renewal to the certificate it replaced (its lineage). */
export const certificateSummarySchema = z.object({
  serial: serialSchema,
  status: certificateStatusSchema,
  notBefore: z.string(),
  notAfter: z.string(),
  issuedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  /** RFC 5280 §5.3.1 reason name (the code as a string when it has no name). */
  revocationReason: z.string().nullable(),
  predecessorSerial: serialSchema.nullable(),
});
export type CertificateSummary = z.infer<typeof certificateSummarySchema>;

/** GET /v1/admin/devices/:id: the summary and every certificate, oldest first. */
export const deviceDetailSchema = deviceSummarySchema.extend({ certificates: z.array(certificateSummarySchema) });
export type DeviceDetail = z.infer<typeof deviceDetailSchema>;

/** GET /v1/admin/devices/:id/tokens: every token made for a device, newest first; never the token itself. */
export const deviceTokenSchema = z.object({
  createdAt: z.string(),
  createdBy: z.string(),
  expiresAt: z.string(),
  issuedAs: z.enum(TOKEN_ISSUES),
  /** unused (may still enroll), used, expired, or withdrawn (its device was revoked for keyCompromise before it was used). */
  state: z.enum(['unused', 'used', 'expired', 'withdrawn']),
  usedAt: z.string().nullable(),
  /** The certificate the token enrolled, and the request that did it (the `requestId` of its log line and answer). */
  serial: serialSchema.nullable(),
  requestId: z.string().nullable(),
});
export type DeviceToken = z.infer<typeof deviceTokenSchema>;
export const deviceTokensResponseSchema = z.object({ deviceId: z.string(), tokens: z.array(deviceTokenSchema) });
export type DeviceTokensResponse = z.infer<typeof deviceTokensResponseSchema>;
