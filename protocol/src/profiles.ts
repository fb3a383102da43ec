import { z } from 'zod';
import { DEVICE_ID_PATTERN, IDENTITY_KINDS } from './device-id.js';
import { environmentNameSchema } from './environments.js';

// Certificate profiles (docs/architecture.md §5): a named, versioned record that fixes an identity's kind, its
// certificate lifetime and renewal window, the key types it may certify, its topic ACL, an ordered list of rules
// (first match decides; nothing matches → denied), and when its identities may be connected (`access`). Filters may
// use `+`, `#` and the placeholders `{id}` (the identity's own id) and `{group}` (its device group) as whole levels. The stored document is JSON, so later members (per-profile broker limits
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

/** Days of a weekly access window, ISO 8601 order (Monday first). */
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A wall-clock time of day, `HH:MM`; `24:00` is the end of the day. */
const timeOfDaySchema = z.string().regex(/^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'a time of day is HH:MM, 00:00 to 24:00');

/** Whether the runtime knows this IANA time zone (Intl, with the DST rules of its ICU data). */
export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * One weekly window: on each of `days`, from `from` (inclusive) until `until` (exclusive), wall-clock time in the
 * schedule's time zone. `until` at or before `from` runs past midnight into the next day (22:00–06:00 on `fri` is Friday
 * 22:00 to Saturday 06:00).
 */
export const weeklyWindowSchema = z.object({
  days: z.array(z.enum(WEEKDAYS)).min(1).max(WEEKDAYS.length),
  from: timeOfDaySchema.refine((t) => t !== '24:00', 'a window cannot start at 24:00; use 00:00'),
  until: timeOfDaySchema,
}).strict().refine((w) => w.from !== w.until, {
  message: 'from and until are equal: give 00:00 to 24:00 for a whole day',
  path: ['until'],
});
export type WeeklyWindow = z.infer<typeof weeklyWindowSchema>;

/**
 * When the identities of a profile may be connected (docs/architecture.md §6): inside one of the `weekly` windows (in
 * `timezone`, an IANA zone, so DST is the zone's) and, if given, not before `from` nor at or after `until` (instants with
 * their UTC offset). Certificates keep their own validity; the window decides only whether the broker admits and keeps
 * a session. Renewal is not limited by it.
 */
export const accessScheduleSchema = z.object({
  timezone: z.string().min(1).max(64).refine(isKnownTimeZone, 'unknown time zone (an IANA name such as Europe/Berlin)').optional(),
  weekly: z.array(weeklyWindowSchema).min(1).max(64).optional(),
  from: z.iso.datetime({ offset: true, message: 'an ISO 8601 date and time with its offset, e.g. 2025-06-01T08:00:00+02:00' }).optional(),
  until: z.iso.datetime({ offset: true, message: 'an ISO 8601 date and time with its offset, e.g. 2025-06-30T18:00:00+02:00' }).optional(),
}).strict().superRefine((access, ctx) => {
  if (access.weekly === undefined && access.from === undefined && access.until === undefined) {
    ctx.addIssue({ code: 'custom', message: 'give weekly windows, from, until, or several of them', path: [] });
  }
  if (access.weekly !== undefined && access.timezone === undefined) {
    ctx.addIssue({ code: 'custom', message: 'weekly windows need the time zone they are read in (e.g. Europe/Berlin)', path: ['timezone'] });
  }
  if (access.from !== undefined && access.until !== undefined && Date.parse(access.until) <= Date.parse(access.from)) {
    ctx.addIssue({ code: 'custom', message: 'until must be after from', path: ['until'] });
  }
});
export type AccessSchedule = z.infer<typeof accessScheduleSchema>;

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
  /** Absent → its identities may be connected at any time. */
  access: accessScheduleSchema.optional(),
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
  /** The environment the service belongs to (absent → `default`). */
  environment: environmentNameSchema.optional(),
}).strict();
export type CreateServiceRequest = z.infer<typeof createServiceRequestSchema>;
