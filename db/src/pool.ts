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
  /**
   * Postgres statement_timeout on every connection of the pool: the server cancels a statement that runs longer
   * (SQLSTATE 57014), which isDatabaseUnavailable counts as unavailable. 0 = none.
   */
  statementTimeoutMillis?: number;
  /**
   * How long the client waits for a query's answer before it fails the query ("Query read timeout") and the pool
   * discards the connection: the bound when the server does not answer at all (frozen, or a network that drops
   * packets), where statement_timeout cannot help. 0 = none.
   */
  queryTimeoutMillis?: number;
  applicationName?: string;
}

export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 20,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 2000,
    idleTimeoutMillis: 30_000,
    statement_timeout: options.statementTimeoutMillis ?? 0,
    query_timeout: options.queryTimeoutMillis ?? 0,
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

/**
 * The bound on each statement that reads or writes in bulk: a batch of up to 100k tokens, the snapshot of every
 * current certificate or live revocation a broker loads, the CRL of every listed revocation. Those outgrow a request's
 * DB_STATEMENT_TIMEOUT with the fleet; they run under this instead (inTransaction's `bulk` option).
 */
export const BULK_TIMEOUT_MS = 5 * 60_000;

/** The connection with every query sent under its own query_timeout instead of the pool's. */
export function withQueryTimeout(client: pg.PoolClient, queryTimeoutMs: number): pg.ClientBase {
  const query = (text: string, values?: unknown[]) => client.query({ text, values, query_timeout: queryTimeoutMs } as pg.QueryConfig);
  return Object.assign(Object.create(client) as pg.ClientBase, { query });
}

/** True when the client stopped waiting for a query's answer (pg's query_timeout). */
export function isQueryTimeout(error: unknown): boolean {
  return (error as { message?: unknown } | undefined)?.message === 'Query read timeout';
}

/** True for errors that mean "the database is unreachable, overloaded or going away", as opposed to a bad query. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (!e) return false;
  const code = e.code ?? '';
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true;
  // 08xxx connection exceptions, 57P01-57P03 admin shutdown / cannot connect now, 53300 too many connections,
  // 57014 a statement cancelled by statement_timeout (the database is too slow to answer in time).
  if (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300', '57014'].includes(code)) return true;
  if (isPoolCheckoutTimeout(error) || isQueryTimeout(error)) return true;
  const message = e.message ?? '';
  return /Connection terminated|connection terminated|Client has encountered a connection error/i.test(message);
}
