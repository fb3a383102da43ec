import path from 'node:path';
import { z } from 'zod';

// All configuration is read here, once, from the environment; validated with every problem reported at once;
// then frozen and passed down as values (DESIGN.md §8). Secrets are never env values: they live in files.

const DURATION = /^(\d+)(s|m|h|d)?$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** "90", "90s", "15m", "24h", "30d" → seconds. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 's') as keyof typeof UNIT_SECONDS;
  return Number(match[1]) * UNIT_SECONDS[unit];
}

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const seconds = parseDuration(text);
      if (seconds === undefined || seconds <= 0) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration like 90s, 15m, 24h or 30d` });
        return z.NEVER;
      }
      return seconds;
    });

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);

const envSchema = z.object({
  ENROLLD_HOME: z.string().min(1).default('./.enrolld'),
  LISTEN_HOST: z.string().min(1).default('0.0.0.0'),
  HTTPS_PORT: port(8443),
  MQTTS_PORT: port(8883),
  DATABASE_URL: z.string().url().optional(),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Extra DNS names / IPs for the server certificate, comma separated (localhost, 127.0.0.1 and ::1 are always in). */
  SERVER_NAMES: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((n) => n.trim()).filter(Boolean)),
  CERT_LIFETIME: duration('30d'),
  CERT_BACKDATE: duration('5m').refine((s) => s <= 3600, 'CERT_BACKDATE may be at most 1h (the CA certificates are backdated by 1h)'),
  TOKEN_TTL: duration('24h'),
  ENROLL_RETRY_WINDOW: duration('1h'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Rotation (issue 5, DESIGN.md §4).
  /** The renewal window: the last fraction of a certificate's lifetime in which the sweep hints its device. */
  RENEWAL_WINDOW: z.coerce.number().gt(0).lt(1).default(1 / 3),
  ROTATION_SWEEP_INTERVAL: duration('5m'),
  ROTATION_HINT_JITTER: duration('10m'),
  /** A predecessor is superseded when its successor first connects, or this long after the successor was issued. */
  SUPERSEDE_GRACE: duration('24h'),
  /** Expired certificates: refuse (default), grace (renew until RENEW_EXPIRED_GRACE after expiry), token (re-enroll). */
  RENEW_EXPIRED: z.enum(['refuse', 'grace', 'token']).default('refuse'),
  RENEW_EXPIRED_GRACE: duration('7d'),
  /** RFC 7030 §3.5 proof-of-possession linking on EST: off, if-present (verify when the CSR carries it), required. */
  EST_POP_LINKING: z.enum(['off', 'if-present', 'required']).default('if-present'),
  /** BullMQ workers in `enrolld up` (in-process) or only in `enrolld worker` (off). */
  JOBS: z.enum(['in-process', 'off']).default('in-process'),
  /** BullMQ key prefix; default derived from the database, so deployments sharing a Redis never share queues. */
  JOBS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).optional(),
}).superRefine((e, ctx) => {
  // notBefore is backdated inside the lifetime (RFC 5280 §4.1.2.5 validity is the whole span), so a lifetime not
  // longer than the backdate would issue certificates that are already expired.
  if (e.CERT_LIFETIME <= e.CERT_BACKDATE) {
    ctx.addIssue({ code: 'custom', path: ['CERT_LIFETIME'], message: `must be longer than CERT_BACKDATE (${e.CERT_BACKDATE}s); lower CERT_BACKDATE for short-lived certificates` });
  }
});

export interface Config {
  home: string;
  paths: { caDir: string; rootCert: string; adminTokenFile: string };
  listenHost: string;
  httpsPort: number;
  mqttsPort: number;
  databaseUrl: string | undefined;
  dbPoolMax: number;
  redisUrl: string;
  serverNames: string[];
  certificateLifetimeSeconds: number;
  backdateSeconds: number;
  tokenTtlSeconds: number;
  enrollRetryWindowSeconds: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  rotation: RotationConfig;
}

export interface RotationConfig {
  renewalWindowFraction: number;
  sweepIntervalSeconds: number;
  hintJitterSeconds: number;
  supersedeGraceSeconds: number;
  expired: { mode: 'refuse' | 'grace' | 'token'; graceSeconds: number };
  estPopLinking: 'off' | 'if-present' | 'required';
  jobs: 'in-process' | 'off';
  jobsPrefix: string | undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  // An empty variable means "unset", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const home = path.resolve(e.ENROLLD_HOME);
  return Object.freeze({
    home,
    paths: Object.freeze({
      caDir: path.join(home, 'ca'),
      rootCert: path.join(home, 'ca', 'root.pem'),
      adminTokenFile: path.join(home, 'admin-token'),
    }),
    listenHost: e.LISTEN_HOST,
    httpsPort: e.HTTPS_PORT,
    mqttsPort: e.MQTTS_PORT,
    databaseUrl: e.DATABASE_URL,
    dbPoolMax: e.DB_POOL_MAX,
    redisUrl: e.REDIS_URL,
    serverNames: Object.freeze([...e.SERVER_NAMES]) as string[],
    certificateLifetimeSeconds: e.CERT_LIFETIME,
    backdateSeconds: e.CERT_BACKDATE,
    tokenTtlSeconds: e.TOKEN_TTL,
    enrollRetryWindowSeconds: e.ENROLL_RETRY_WINDOW,
    logLevel: e.LOG_LEVEL,
    rotation: Object.freeze({
      renewalWindowFraction: e.RENEWAL_WINDOW,
      sweepIntervalSeconds: e.ROTATION_SWEEP_INTERVAL,
      hintJitterSeconds: e.ROTATION_HINT_JITTER,
      supersedeGraceSeconds: e.SUPERSEDE_GRACE,
      expired: Object.freeze({ mode: e.RENEW_EXPIRED, graceSeconds: e.RENEW_EXPIRED_GRACE }),
      estPopLinking: e.EST_POP_LINKING,
      jobs: e.JOBS,
      jobsPrefix: e.JOBS_PREFIX,
    }),
  });
}
