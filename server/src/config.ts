import { isIP } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_ENVIRONMENT, DEVICE_ID_PATTERN } from '@enrolld/protocol';
import type { ConnectionLimits } from './mqtt/limits.js';

// All configuration is read here, once, from the environment; validated with every problem reported at once;
// then frozen and passed down as values (docs/architecture.md, "Configuration"). Secrets are never env values: they
// live in files.

const DURATION = /^(\d+)(ms|s|m|h|d)?$/;
const UNIT_SECONDS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 } as const;

/** "250ms", "90", "90s", "15m", "24h", "30d" → seconds. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const unit = (match[2] ?? 's') as keyof typeof UNIT_SECONDS;
  return Number(match[1]) * UNIT_SECONDS[unit];
}

/** A duration in whole seconds (certificate and token lifetimes, intervals of jobs). */
const duration = (fallback: string) => durationIn(fallback, { wholeSeconds: true });
/** A duration that may be finer than a second (broker and CRL timers that tests run fast). */
const fineDuration = (fallback: string) => durationIn(fallback, { wholeSeconds: false });

/** A duration with no default: unset means "derive it from other settings". */
const optionalDuration = () => durationIn(undefined, { wholeSeconds: true }).optional();

function durationIn(fallback: string | undefined, options: { wholeSeconds: boolean }) {
  const text = z.string();
  return (fallback === undefined ? text : text.default(fallback))
    .transform((text, ctx) => {
      const seconds = parseDuration(text);
      if (seconds === undefined || seconds <= 0) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration like ${options.wholeSeconds ? '' : '500ms, '}90s, 15m, 24h or 30d` });
        return z.NEVER;
      }
      if (options.wholeSeconds && !Number.isInteger(seconds)) {
        ctx.addIssue({ code: 'custom', message: `"${text}" must be whole seconds (like 90s)` });
        return z.NEVER;
      }
      return seconds;
    });
}

const SIZE = /^(\d+)(B|KiB|MiB)?$/;
const UNIT_BYTES = { B: 1, KiB: 1024, MiB: 1024 * 1024 } as const;

/** "131072", "128KiB", "1MiB" → bytes. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_BYTES[(match[2] ?? 'B') as keyof typeof UNIT_BYTES];
}

/** A byte size of at least `min`. */
const size = (fallback: string, min: number) =>
  z.string().default(fallback).transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes < min) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a size of at least ${min} bytes like 131072, 128KiB or 1MiB` });
      return z.NEVER;
    }
    return bytes;
  });

const count = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

/** express's named ranges (proxy-addr), an IP, or an IP/prefix. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
function isProxyRange(entry: string): boolean {
  if (PROXY_RANGE_NAMES.has(entry)) return true;
  const [address = '', prefix, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

const port = (fallback: number) => z.coerce.number().int().min(0).max(65_535).default(fallback);

const envSchema = z.object({
  ENROLLD_HOME: z.string().min(1).default('./.enrolld'),
  /** The environment a broker serves: it trusts only that environment's issuing CA (docs/architecture.md §5). */
  ENROLLD_ENV: z.string().regex(DEVICE_ID_PATTERN, 'must be an environment name (^[a-z0-9][a-z0-9._-]{0,62}$)').default(DEFAULT_ENVIRONMENT),
  LISTEN_HOST: z.string().min(1).default('0.0.0.0'),
  HTTPS_PORT: port(8443),
  MQTTS_PORT: port(8883),
  /** `enrolld broker`'s plain-HTTP port: /healthz, /readyz and /metrics only (no admin routes, nothing secret). */
  BROKER_HTTP_PORT: port(9883),
  /** Where that port listens; default LISTEN_HOST (a probe or a scraper must reach it; 127.0.0.1 keeps it local). */
  BROKER_HTTP_HOST: z.string().regex(/^[A-Za-z0-9.:%-]{1,253}$/, 'must be an IP address or a host name').optional(),
  DATABASE_URL: z.string().url().optional(),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
  /** A request that waits this long for a pooled connection gets 503 with Retry-After instead of hanging. */
  DB_CHECKOUT_TIMEOUT: fineDuration('2s'),
  /** Connections kept apart for revocation (revokes, supersede batches, the broker's sync), so renewals never starve it. */
  DB_REVOCATION_POOL_MAX: z.coerce.number().int().min(1).max(50).default(3),
  /** Server-side bound on one statement (Postgres statement_timeout), set on every pooled connection. */
  DB_STATEMENT_TIMEOUT: fineDuration('5s'),
  /** Client-side bound on one query's answer: a frozen or unreachable database fails the request (503) past it. */
  DB_QUERY_TIMEOUT: fineDuration('6s'),
  /** `enrolld up`: restarts of a dead embedded Postgres that may fail in a row before enrolld exits non-zero. */
  EMBEDDED_PG_MAX_RESTARTS: z.coerce.number().int().min(0).max(100).default(5),
  /** Delay before the first restart of a dead embedded Postgres; doubles per failed restart, up to 30 s. */
  EMBEDDED_PG_RESTART_DELAY: fineDuration('1s'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Proxies whose X-Forwarded-For names the client: IPs, CIDRs, loopback, linklocal, uniquelocal; comma separated. */
  TRUSTED_PROXIES: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const entries = s.split(',').map((n) => n.trim()).filter(Boolean);
      for (const entry of entries.filter((e) => !isProxyRange(e))) {
        ctx.addIssue({ code: 'custom', message: `"${entry}" is not an IP address, a CIDR range or one of loopback, linklocal, uniquelocal` });
      }
      return entries;
    }),
  /** Failed token attempts (401) one source address may make per TOKEN_FAILURE_WINDOW before it gets 429; 0 = no limit. */
  TOKEN_FAILURE_LIMIT: z.coerce.number().int().min(0).max(1_000_000).default(20),
  TOKEN_FAILURE_WINDOW: fineDuration('1m'),
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
  // Rotation (docs/architecture.md, "Rotation").
  /** The renewal window: the last fraction of a certificate's lifetime in which the sweep hints its device. */
  RENEWAL_WINDOW: z.coerce.number().gt(0).lt(1).default(1 / 3),
  ROTATION_SWEEP_INTERVAL: duration('5m'),
  ROTATION_HINT_JITTER: duration('10m'),
  /** A predecessor is superseded when its successor first connects, or this long after the successor was issued. */
  SUPERSEDE_GRACE: duration('24h'),
  /** Successors that first connect within this window retire their predecessors in one statement. */
  SUPERSEDE_BATCH_WINDOW: fineDuration('25ms'),
  /** Expired certificates: refuse (default), grace (renew until RENEW_EXPIRED_GRACE after expiry), token (re-enroll). */
  RENEW_EXPIRED: z.enum(['refuse', 'grace', 'token']).default('refuse'),
  RENEW_EXPIRED_GRACE: duration('7d'),
  /** RFC 7030 §3.5 proof-of-possession linking on EST: off, if-present (verify when the CSR carries it), required. */
  EST_POP_LINKING: z.enum(['off', 'if-present', 'required']).default('if-present'),
  /** BullMQ workers in `enrolld up` (in-process) or only in `enrolld worker` (off). */
  JOBS: z.enum(['in-process', 'off']).default('in-process'),
  /** BullMQ key prefix; default derived from the database, so deployments sharing a Redis never share queues. */
  JOBS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).optional(),
  JOBS_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(8),
  /** A job whose worker stops renewing its lock for this long is stalled and runs again (BullMQ lockDuration). */
  JOBS_LOCK_DURATION: duration('30s'),
  JOBS_STALLED_INTERVAL: duration('30s'),
  /** How often the worker looks for predecessors whose grace ended; default a quarter of SUPERSEDE_GRACE, 1s..60s. */
  SUPERSEDE_CHECK_INTERVAL: optionalDuration(),
  // Revocation and the broker (docs/architecture.md, "Revocation").
  /** nextUpdate − thisUpdate of every CRL (RFC 5280 §5.1.2.5); the API rebuilds it at half-life. */
  CRL_VALIDITY: duration('7d'),
  /** How often the API checks whether the CRL reached half-life or misses a revocation. */
  CRL_REFRESH_CHECK: fineDuration('15m'),
  /** CRL rebuilds start at least this far apart; revocations in between share the next one (docs/architecture.md §7). */
  CRL_MIN_INTERVAL: fineDuration('1s'),
  /** A console sign-in ends after this long without a request. */
  CONSOLE_SESSION_TTL: duration('8h'),
  /** `off`: admin bearer tokens are refused; admins authenticate with admin client certificates only. */
  ADMIN_BEARER: z.enum(['on', 'off']).default('on'),
  /** Certificates a bulk revocation job revokes per statement. */
  BULK_REVOKE_BATCH: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Bulk revocation jobs one worker runs at once, on their own queue (the rotation jobs never wait behind them). */
  BULK_REVOKE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /** How often each broker resyncs by revocation sequence: the bound on how long a lost NOTIFY goes unnoticed. */
  BROKER_RESYNC_INTERVAL: fineDuration('5s'),
  /** With no successful sync for this long a broker no longer knows the revocation state and refuses CONNECTs. */
  BROKER_MAX_STALENESS: fineDuration('60s'),
  /** TLS session tickets on the broker (resumption); off saves ~16 KiB per idle connection. */
  BROKER_SESSION_TICKETS: z.enum(['on', 'off']).default('off'),
  /** Time a TLS connection may take to send CONNECT. */
  BROKER_CONNECT_TIMEOUT: fineDuration('10s'),
  /** Each broker writes the connections and disconnections it heard to Postgres this often, in one statement (§9b). */
  BROKER_PRESENCE_FLUSH: fineDuration('250ms'),
  /** Each broker refreshes its presence heartbeat this often and removes nodes whose heartbeat expired. */
  BROKER_PRESENCE_HEARTBEAT: fineDuration('5s'),
  /** A broker's presence rows stop counting this long after its last heartbeat (a killed broker); default 3 heartbeats. */
  BROKER_PRESENCE_STALE_AFTER: durationIn(undefined, { wholeSeconds: false }).optional(),
  /** `redis`: brokers share messages, sessions, retained messages and wills over REDIS_URL (docs/architecture.md §6). */
  BROKER_CLUSTER: z.enum(['none', 'redis']).default('none'),
  /**
   * Prefix of the cluster's Redis channels and keys: brokers with the same prefix form one cluster. Default
   * `enrolld:mqtt:`, and `enrolld:mqtt:<env>:` for another ENROLLD_ENV, so brokers of two environments never share
   * messages or sessions.
   */
  BROKER_CLUSTER_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/).optional(),
  /** Aedes heartbeat; a node silent for 3 heartbeats is dead and its devices' wills are published. Default 60s, 5s in a cluster. */
  BROKER_HEARTBEAT_INTERVAL: durationIn(undefined, { wholeSeconds: false }).optional(),
  /** Time a TCP connection to the MQTT port may take to finish its TLS handshake; then it is closed. */
  BROKER_HANDSHAKE_TIMEOUT: fineDuration('10s'),
  /** Sockets not yet admitted at CONNECT, per source address and in all; over either a new one is closed at once. */
  BROKER_MAX_PENDING_PER_ADDRESS: count(256),
  BROKER_MAX_PENDING: count(4096),
  // Per-identity limits (docs/architecture.md §6): the defaults of every device.
  BROKER_MAX_PACKET_SIZE: size('128KiB', 64),
  BROKER_MAX_RETAINED: count(32, 0),
  BROKER_MAX_RETAINED_BYTES: size('1MiB', 0),
  BROKER_MAX_SUBSCRIPTIONS: count(50, 0),
  BROKER_PUBLISH_RATE: z.coerce.number().gt(0).default(100),
  BROKER_PUBLISH_BURST: count(200),
  BROKER_MAX_INFLIGHT: count(100),
  // MQTT packet ids are 16 bits (MQTT-2.3.1): the window can never hold more messages than there are ids.
  BROKER_MAX_OUTBOUND_INFLIGHT: count(32).pipe(z.number().max(65535)),
  BROKER_MAX_QUEUED_MESSAGES: count(1000, 0),
  BROKER_CONNECT_RATE: z.coerce.number().gt(0).default(1),
  BROKER_CONNECT_BURST: count(10),
  /** Connections in the pool of a process that runs only the broker or only the worker. */
  ROLE_DB_POOL_MAX: z.coerce.number().int().min(1).max(100).default(4),
}).superRefine((e, ctx) => {
  // notBefore is backdated inside the lifetime (RFC 5280 §4.1.2.5 validity is the whole span), so a lifetime not
  // longer than the backdate would issue certificates that are already expired.
  if (e.CERT_LIFETIME <= e.CERT_BACKDATE) {
    ctx.addIssue({ code: 'custom', path: ['CERT_LIFETIME'], message: `must be longer than CERT_BACKDATE (${e.CERT_BACKDATE}s); lower CERT_BACKDATE for short-lived certificates` });
  }
  if (e.DB_QUERY_TIMEOUT < e.DB_STATEMENT_TIMEOUT) {
    ctx.addIssue({ code: 'custom', path: ['DB_QUERY_TIMEOUT'], message: `must be at least DB_STATEMENT_TIMEOUT (${e.DB_STATEMENT_TIMEOUT}s), so Postgres cancels a slow statement before the client gives up on it` });
  }
  // Both ports of `enrolld broker` listen on one host unless BROKER_HTTP_HOST moves the HTTP one.
  if (e.BROKER_HTTP_PORT !== 0 && e.BROKER_HTTP_PORT === e.MQTTS_PORT && (e.BROKER_HTTP_HOST ?? e.LISTEN_HOST) === e.LISTEN_HOST) {
    ctx.addIssue({ code: 'custom', path: ['BROKER_HTTP_PORT'], message: `must differ from MQTTS_PORT (${e.MQTTS_PORT}): the broker listens on both` });
  }
  if (e.BROKER_MAX_STALENESS <= e.BROKER_RESYNC_INTERVAL) {
    ctx.addIssue({ code: 'custom', path: ['BROKER_MAX_STALENESS'], message: `must be longer than BROKER_RESYNC_INTERVAL (${e.BROKER_RESYNC_INTERVAL}s), or every broker fails closed between two resyncs` });
  }
});

export interface Config {
  home: string;
  /** ENROLLD_ENV: the environment the broker of this process serves. */
  environment: string;
  /** adminCert/adminKey: the admin client certificate the CLI presents when it finds both (README, "Admins"). */
  paths: { caDir: string; rootCert: string; adminTokenFile: string; adminCert: string; adminKey: string };
  listenHost: string;
  httpsPort: number;
  mqttsPort: number;
  /** `enrolld broker`'s health and metrics port (BROKER_HTTP_PORT) and where it listens (BROKER_HTTP_HOST, else LISTEN_HOST). */
  brokerHttp: { host: string; port: number };
  databaseUrl: string | undefined;
  dbPoolMax: number;
  dbCheckoutTimeoutMs: number;
  dbRevocationPoolMax: number;
  dbStatementTimeoutMs: number;
  dbQueryTimeoutMs: number;
  embeddedPostgres: { maxRestarts: number; restartDelayMs: number };
  http: { trustedProxies: string[]; failedTokenLimit: { limit: number; windowMs: number } };
  redisUrl: string;
  consoleSessionTtlMs: number;
  /** ADMIN_BEARER=on: the admin API takes bearer tokens (as owner) beside admin certificates. */
  adminBearer: boolean;
  serverNames: string[];
  certificateLifetimeSeconds: number;
  backdateSeconds: number;
  tokenTtlSeconds: number;
  enrollRetryWindowSeconds: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /** Pool size of a process that runs only the broker or only the worker. */
  roleDbPoolMax: number;
  rotation: RotationConfig;
  revocation: RevocationConfig;
  broker: BrokerTunables;
}

export interface RevocationConfig {
  crlValidityMs: number;
  crlRefreshCheckMs: number;
  crlMinIntervalMs: number;
  bulkBatchSize: number;
  bulkConcurrency: number;
}

export interface BrokerTunables {
  resyncIntervalMs: number;
  maxStalenessMs: number;
  sessionTickets: boolean;
  connectTimeoutMs: number;
  cluster: { mode: 'none' | 'redis'; prefix: string };
  heartbeatIntervalMs: number;
  /** Cluster-wide presence in Postgres (docs/architecture.md §9b). */
  presence: { flushMs: number; heartbeatMs: number; staleAfterMs: number };
  handshakeTimeoutMs: number;
  maxPendingPerAddress: number;
  maxPending: number;
  /** The per-identity limits every device gets unless a resolver gives others. */
  limits: ConnectionLimits;
}

export interface RotationConfig {
  renewalWindowFraction: number;
  sweepIntervalSeconds: number;
  hintJitterSeconds: number;
  supersedeGraceSeconds: number;
  supersedeBatchWindowMs: number;
  expired: { mode: 'refuse' | 'grace' | 'token'; graceSeconds: number };
  estPopLinking: 'off' | 'if-present' | 'required';
  jobs: 'in-process' | 'off';
  jobsPrefix: string | undefined;
  jobConcurrency: number;
  jobLockDurationMs: number;
  jobStalledIntervalMs: number;
  supersedeCheckIntervalMs: number;
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
    environment: e.ENROLLD_ENV,
    paths: Object.freeze({
      caDir: path.join(home, 'ca'),
      rootCert: path.join(home, 'ca', 'root.pem'),
      adminTokenFile: path.join(home, 'admin-token'),
      adminCert: path.join(home, 'admin.pem'),
      adminKey: path.join(home, 'admin.key'),
    }),
    listenHost: e.LISTEN_HOST,
    httpsPort: e.HTTPS_PORT,
    mqttsPort: e.MQTTS_PORT,
    brokerHttp: Object.freeze({ host: e.BROKER_HTTP_HOST ?? e.LISTEN_HOST, port: e.BROKER_HTTP_PORT }),
    databaseUrl: e.DATABASE_URL,
    dbPoolMax: e.DB_POOL_MAX,
    dbCheckoutTimeoutMs: Math.round(e.DB_CHECKOUT_TIMEOUT * 1000),
    dbRevocationPoolMax: e.DB_REVOCATION_POOL_MAX,
    dbStatementTimeoutMs: Math.round(e.DB_STATEMENT_TIMEOUT * 1000),
    dbQueryTimeoutMs: Math.round(e.DB_QUERY_TIMEOUT * 1000),
    embeddedPostgres: Object.freeze({ maxRestarts: e.EMBEDDED_PG_MAX_RESTARTS, restartDelayMs: Math.round(e.EMBEDDED_PG_RESTART_DELAY * 1000) }),
    http: Object.freeze({
      trustedProxies: Object.freeze([...e.TRUSTED_PROXIES]) as string[],
      failedTokenLimit: Object.freeze({ limit: e.TOKEN_FAILURE_LIMIT, windowMs: Math.round(e.TOKEN_FAILURE_WINDOW * 1000) }),
    }),
    redisUrl: e.REDIS_URL,
    consoleSessionTtlMs: e.CONSOLE_SESSION_TTL * 1000,
    adminBearer: e.ADMIN_BEARER === 'on',
    serverNames: Object.freeze([...e.SERVER_NAMES]) as string[],
    certificateLifetimeSeconds: e.CERT_LIFETIME,
    backdateSeconds: e.CERT_BACKDATE,
    tokenTtlSeconds: e.TOKEN_TTL,
    enrollRetryWindowSeconds: e.ENROLL_RETRY_WINDOW,
    logLevel: e.LOG_LEVEL,
    roleDbPoolMax: e.ROLE_DB_POOL_MAX,
    revocation: Object.freeze({
      crlValidityMs: Math.round(e.CRL_VALIDITY * 1000),
      crlRefreshCheckMs: Math.round(e.CRL_REFRESH_CHECK * 1000),
      crlMinIntervalMs: Math.round(e.CRL_MIN_INTERVAL * 1000),
      bulkBatchSize: e.BULK_REVOKE_BATCH,
      bulkConcurrency: e.BULK_REVOKE_CONCURRENCY,
    }),
    broker: Object.freeze({
      resyncIntervalMs: Math.round(e.BROKER_RESYNC_INTERVAL * 1000),
      maxStalenessMs: Math.round(e.BROKER_MAX_STALENESS * 1000),
      sessionTickets: e.BROKER_SESSION_TICKETS === 'on',
      connectTimeoutMs: Math.round(e.BROKER_CONNECT_TIMEOUT * 1000),
      cluster: Object.freeze({
        mode: e.BROKER_CLUSTER,
        prefix: e.BROKER_CLUSTER_PREFIX ?? (e.ENROLLD_ENV === DEFAULT_ENVIRONMENT ? 'enrolld:mqtt:' : `enrolld:mqtt:${e.ENROLLD_ENV}:`),
      }),
      heartbeatIntervalMs: Math.round((e.BROKER_HEARTBEAT_INTERVAL ?? (e.BROKER_CLUSTER === 'redis' ? 5 : 60)) * 1000),
      presence: Object.freeze({
        flushMs: Math.round(e.BROKER_PRESENCE_FLUSH * 1000),
        heartbeatMs: Math.round(e.BROKER_PRESENCE_HEARTBEAT * 1000),
        staleAfterMs: Math.round((e.BROKER_PRESENCE_STALE_AFTER ?? 3 * e.BROKER_PRESENCE_HEARTBEAT) * 1000),
      }),
      handshakeTimeoutMs: Math.round(e.BROKER_HANDSHAKE_TIMEOUT * 1000),
      maxPendingPerAddress: e.BROKER_MAX_PENDING_PER_ADDRESS,
      maxPending: e.BROKER_MAX_PENDING,
      limits: Object.freeze({
        maxPacketBytes: e.BROKER_MAX_PACKET_SIZE,
        maxRetainedMessages: e.BROKER_MAX_RETAINED,
        maxRetainedBytes: e.BROKER_MAX_RETAINED_BYTES,
        maxSubscriptions: e.BROKER_MAX_SUBSCRIPTIONS,
        publishRatePerSecond: e.BROKER_PUBLISH_RATE,
        publishBurst: e.BROKER_PUBLISH_BURST,
        maxInflight: e.BROKER_MAX_INFLIGHT,
        maxOutboundInflight: e.BROKER_MAX_OUTBOUND_INFLIGHT,
        maxQueuedMessages: e.BROKER_MAX_QUEUED_MESSAGES,
        connectRatePerSecond: e.BROKER_CONNECT_RATE,
        connectBurst: e.BROKER_CONNECT_BURST,
      }),
    }),
    rotation: Object.freeze({
      renewalWindowFraction: e.RENEWAL_WINDOW,
      sweepIntervalSeconds: e.ROTATION_SWEEP_INTERVAL,
      hintJitterSeconds: e.ROTATION_HINT_JITTER,
      supersedeGraceSeconds: e.SUPERSEDE_GRACE,
      supersedeBatchWindowMs: Math.round(e.SUPERSEDE_BATCH_WINDOW * 1000),
      expired: Object.freeze({ mode: e.RENEW_EXPIRED, graceSeconds: e.RENEW_EXPIRED_GRACE }),
      estPopLinking: e.EST_POP_LINKING,
      jobs: e.JOBS,
      jobsPrefix: e.JOBS_PREFIX,
      jobConcurrency: e.JOBS_CONCURRENCY,
      jobLockDurationMs: Math.round(e.JOBS_LOCK_DURATION * 1000),
      jobStalledIntervalMs: Math.round(e.JOBS_STALLED_INTERVAL * 1000),
      supersedeCheckIntervalMs:
        e.SUPERSEDE_CHECK_INTERVAL !== undefined ? e.SUPERSEDE_CHECK_INTERVAL * 1000 : Math.min(60_000, Math.max(1000, (e.SUPERSEDE_GRACE * 1000) / 4)),
    }),
  });
}

/**
 * Whether the CLI may colour what it writes to a stream: only a terminal, and never with NO_COLOR set to a non-empty
 * value (https://no-color.org). Read apart from loadConfig, because the admin commands print before any server setting
 * matters.
 */
export function colorsWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR;
}
