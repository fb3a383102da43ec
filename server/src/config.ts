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
  });
}
