import { z } from 'zod';
import { DEVICE_ID_PATTERN } from './device-id.js';
import { environmentNameSchema } from './environments.js';
import { REVOCATION_REASON_NAMES } from './reasons.js';
import { isCanonicalSerial } from './serial.js';

// The request and response bodies of every HTTP route (routes.ts), and the MQTT renewal payloads, as zod schemas:
// the server validates what it receives and types what it sends with them; the CLI and the simulator parse with them.

export const deviceIdSchema = z.string().regex(DEVICE_ID_PATTERN, 'device id must match ^[a-z0-9][a-z0-9._-]{0,62}$');

/** A device group (device-id.ts isValidGroup): the certificate carries it, the ACL placeholder `{group}` reads it. */
export const groupSchema = z.string().regex(DEVICE_ID_PATTERN, 'group must match ^[a-z0-9][a-z0-9._-]{0,62}$');

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
  /** When the renewal window opens: the last renewalWindowFraction of the lifetime (the profile's, else RENEWAL_WINDOW). */
  renewAfter: z.string(),
});
export type EnrollResponse = z.infer<typeof enrollResponseSchema>;
export const renewResponseSchema = enrollResponseSchema;
export type RenewResponse = EnrollResponse;

const MAX_TTL_SECONDS = 365 * 24 * 3600;

/** A token's profile: absent → the built-in profile of the token's kind (`device`, or `service` for a service token). */
const tokenProfileSchema = z.string().regex(DEVICE_ID_PATTERN, 'profile name must match ^[a-z0-9][a-z0-9._-]{0,62}$').optional();

/**
 * What an admin allows when a token is made for an id that already has certificates: `replace` for an id whose
 * certificate is still live (the new enrollment will not revoke it), `afterCompromise` for an id whose last certificates
 * were revoked for keyCompromise. Without them such ids are refused (409), so a batch never re-issues an id by accident.
 */
const reissueConsent = {
  replace: z.boolean().optional(),
  afterCompromise: z.boolean().optional(),
};

/** The environment a token enrolls in (absent → `default`); an identity stays in the environment of its first token. */
const tokenEnvironment = { environment: environmentNameSchema.optional() };

export const createTokenRequestSchema = z.union([
  z.object({
    deviceId: deviceIdSchema,
    profile: tokenProfileSchema,
    group: groupSchema.optional(),
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
    ...reissueConsent,
    ...tokenEnvironment,
  }).strict(),
  z.object({
    prefix: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,50}$/, 'prefix must be a valid device id start of at most 51 chars'),
    count: z.number().int().min(1).max(100_000),
    profile: tokenProfileSchema,
    group: groupSchema.optional(),
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
    ...reissueConsent,
    ...tokenEnvironment,
  }).strict(),
  /** A token for a service identity: it enrolls as urn:enrolld:service:<name> and never as a device. */
  z.object({
    service: z.string().regex(DEVICE_ID_PATTERN, 'service name must match ^[a-z0-9][a-z0-9._-]{0,62}$'),
    profile: tokenProfileSchema,
    ttlSeconds: z.number().int().positive().max(MAX_TTL_SECONDS).optional(),
    ...reissueConsent,
    ...tokenEnvironment,
  }).strict(),
]);
export type CreateTokenRequest = z.infer<typeof createTokenRequestSchema>;

/** How a token was issued: for an id with no certificate yet, for one that had certificates, after a keyCompromise. */
export const TOKEN_ISSUES = ['new', 're-issued', 'after-compromise'] as const;
export type TokenIssue = (typeof TOKEN_ISSUES)[number];

/** `batchId`: one per request (the same on every token of a batch); the device records it when it enrolls. */
export const createdTokenSchema = z.object({ deviceId: z.string(), token: z.string(), expiresAt: z.string(), issuedAs: z.enum(TOKEN_ISSUES), batchId: z.string().uuid() });
export type CreatedToken = z.infer<typeof createdTokenSchema>;
/** POST /v1/admin/tokens answers with a list, one entry for a single device, `count` entries for a batch. */
export const createTokensResponseSchema = z.array(createdTokenSchema);
export type CreateTokensResponse = z.infer<typeof createTokensResponseSchema>;
/** The same answer as text/csv (RFC 4180), one header line naming these columns. */
export const CREATED_TOKEN_CSV_COLUMNS = ['deviceId', 'token', 'expiresAt', 'issuedAs', 'batchId'] as const satisfies ReadonlyArray<keyof CreatedToken>;

export const revokeRequestSchema = z.object({
  reason: z.enum(REVOCATION_REASON_NAMES as [string, ...string[]]).default('unspecified'),
  /** Why, in the admin's words: kept in the audit trail with the revocation. */
  comment: z.string().max(500).optional(),
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
    /** Only devices of this environment (absent: every environment). */
    env: environmentNameSchema.optional(),
  })
  .strict();
export type DeviceListQuery = z.infer<typeof deviceListQuerySchema>;

export const deviceSummarySchema = z.object({
  id: z.string(),
  /** The environment the identity belongs to: its certificates are issued by that environment's CA. */
  environment: z.string(),
  profile: z.string(),
  /** The group of the device's last enrollment (its token's); null when it has none. */
  group: z.string().nullable(),
  /** The token batch of the device's last enrollment; null before it enrolled (or enrolled before batches were kept). */
  tokenBatch: z.string().nullable(),
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

/** GET /v1/admin/audit query: newest first; `before` is the `next` of the previous page (a chain seq). */
export const auditQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    before: z.coerce.number().int().positive().optional(),
    action: z.string().max(100).optional(),
    actor: z.string().max(200).optional(),
    deviceId: z.string().max(63).optional(),
    since: z.coerce.date().optional(),
    until: z.coerce.date().optional(),
  })
  .strict();
export type AuditQueryParams = z.infer<typeof auditQuerySchema>;

export const auditEventSchema = z.object({
  seq: z.number(),
  id: z.number(),
  at: z.string(),
  action: z.string(),
  actor: z.string(),
  deviceId: z.string().nullable(),
  serial: z.string().nullable(),
  requestId: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()),
  /** sha256(previous row's hash || this row's content), hex. */
  hash: z.string(),
});
export type AuditEventBody = z.infer<typeof auditEventSchema>;

export const auditListResponseSchema = z.object({ events: z.array(auditEventSchema), next: z.number().nullable() });
export type AuditListResponse = z.infer<typeof auditListResponseSchema>;

/** GET /v1/admin/audit/verify: the whole chain walked; `firstBreak` names the first row altered, inserted or deleted. */
export const auditVerificationSchema = z.object({
  ok: z.boolean(),
  rows: z.number(),
  head: z.object({ seq: z.number(), hash: z.string() }).nullable(),
  firstBreak: z
    .object({
      kind: z.enum(['altered', 'relinked', 'deleted', 'outside']),
      id: z.number().nullable(),
      seq: z.number().nullable(),
      message: z.string(),
    })
    .nullable(),
});
export type AuditVerificationBody = z.infer<typeof auditVerificationSchema>;

/**
 * Which certificates a bulk revocation takes: unrevoked ones matching every field given (at least one). Without
 * `status` only unexpired ones (as a device revoke); a list of serials also takes expired ones, as a revoke by serial does.
 */
export const bulkSelectorSchema = z
  .object({
    prefix: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'prefix must be the start of a device id').optional(),
    profile: z.string().min(1).max(100).optional(),
    issuedBefore: z.coerce.date().optional(),
    issuedAfter: z.coerce.date().optional(),
    serials: z
      .array(z.string().refine(isCanonicalSerial, 'serial must be lowercase minimal DER hex'))
      .min(1)
      .max(100_000)
      .optional(),
    status: z.enum(['active', 'pending', 'expired']).optional(),
    /** Only certificates of this environment (a profile name means that environment's profile). */
    environment: environmentNameSchema.optional(),
    /** Certificates of the devices that enrolled with a token of this batch (the `batchId` of the token answer). */
    tokenBatch: z.string().uuid('tokenBatch must be the batchId of a token answer (a UUID)').optional(),
  })
  .strict()
  .refine((s) => Object.values(s).some((v) => v !== undefined), 'a selector needs at least one field');
export type BulkSelector = z.infer<typeof bulkSelectorSchema>;

export const bulkRevocationRequestSchema = z
  .object({
    selector: bulkSelectorSchema,
    reason: z.enum(REVOCATION_REASON_NAMES.filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold') as [string, ...string[]]).default('unspecified'),
    dryRun: z.boolean().default(false),
  })
  .strict();
export type BulkRevocationRequest = z.input<typeof bulkRevocationRequestSchema>;

export const bulkTargetSchema = z.object({ deviceId: z.string(), serial: z.string() });

/** The answer to a dry run: how many certificates the selector takes now, and the first of them. */
export const bulkDryRunResponseSchema = z.object({ dryRun: z.literal(true), count: z.number(), sample: z.array(bulkTargetSchema) });
export type BulkDryRunResponse = z.infer<typeof bulkDryRunResponseSchema>;

export const BULK_REVOCATION_STATUSES = ['queued', 'running', 'done', 'failed'] as const;

/** A bulk revocation job (202 from POST, and GET /v1/admin/revocations/:id): `done` of `total` targets handled. */
export const bulkRevocationJobSchema = z.object({
  id: z.string(),
  status: z.enum(BULK_REVOCATION_STATUSES),
  selector: z.record(z.string(), z.unknown()),
  reason: z.string(),
  actor: z.string(),
  total: z.number(),
  done: z.number(),
  /** Certificates this job revoked (targets revoked meanwhile by someone else are done, not revoked). */
  revoked: z.number(),
  error: z.string().nullable(),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type BulkRevocationJobBody = z.infer<typeof bulkRevocationJobSchema>;

/** GET /v1/admin/fleet: the fleet search, keyset by device id; every filter optional. */
export const fleetQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50),
    after: z.string().max(63).optional(),
    prefix: z.string().max(63).optional(),
    status: certificateStatusSchema.optional(),
    profile: z.string().max(100).optional(),
    expiresWithinDays: z.coerce.number().int().min(0).max(3650).optional(),
    connected: z.enum(['true', 'false']).optional(),
    /** Only devices of this environment (absent: every environment). */
    env: environmentNameSchema.optional(),
    /** Only devices that enrolled with a token of this batch. */
    batch: z.string().uuid('batch must be the batchId of a token answer (a UUID)').optional(),
  })
  .strict();
export type FleetQueryParams = z.infer<typeof fleetQuerySchema>;

export const fleetDeviceSchema = deviceSummarySchema.extend({ connected: z.boolean(), lastSeen: z.string().nullable() });
export const fleetPageSchema = z.object({ devices: z.array(fleetDeviceSchema), next: z.string().nullable() });
export type FleetPage = z.infer<typeof fleetPageSchema>;

/** GET /v1/admin/fleet/devices/:id: the device with its certificates, presence, and its audit events (newest first). */
export const fleetDeviceDetailSchema = deviceDetailSchema.extend({
  connected: z.boolean(),
  lastSeen: z.string().nullable(),
  events: z.array(auditEventSchema),
});
export type FleetDeviceDetail = z.infer<typeof fleetDeviceDetailSchema>;

export const fleetChartsSchema = z.object({
  /** One entry per UTC day: today and the next 30 days. */
  expiringPerDay: z.array(z.object({ day: z.string(), count: z.number() })),
  /** Connected devices over time (ms since the epoch). */
  connected: z.array(z.object({ at: z.number(), connected: z.number() })),
});
export type FleetCharts = z.infer<typeof fleetChartsSchema>;

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
