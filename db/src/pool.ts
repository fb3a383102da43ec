import pg from 'pg';

// timestamptz and bigint come back as strings/Dates as pg decides; we keep pg's defaults and convert at the store edge.
export interface PoolOptions {
  connectionString: string;
  max?: number;
  /**
   * How long a query waits for a connection: to open one, or for one of `max` to come free. Past it the query fails
   * with pg-pool's "timeout exceeded when trying to connect", which isDatabaseUnavailable counts as unavailable, so a
   * request answers 503 with Retry-After instead of hanging (docs/architecture.md §9).
   */
  connectionTimeoutMillis?: number;
  applicationName?: string;
}

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 20,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 2000,
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'enrolld',
  });
  // An idle client losing its server must not crash the process; the next query reports the outage.
  pool.on('error', () => undefined);
  return pool;
}

const CHECKOUT_TIMEOUT = /timeout exceeded when trying to connect/i;

/** True when a query gave up waiting for a pooled connection: the database is busy (or unreachable), not broken. */
export function isPoolCheckoutTimeout(error: unknown): boolean {
  const message = (error as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' && CHECKOUT_TIMEOUT.test(message);
}

/** True for errors that mean "the database is unreachable, overloaded or going away", as opposed to a bad query. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  // 08xxx connection exceptions, 57P01-57P03 admin shutdown / cannot connect now, 53300 too many connections.
  if (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  if (isPoolCheckoutTimeout(error)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection terminated|Client has encountered a connection error/i.test(message);
}
