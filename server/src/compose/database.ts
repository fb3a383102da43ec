import type { Logger } from 'pino';
import type pg from 'pg';
import { createPool, isDatabaseUnavailable, migrate, startEmbeddedPostgres } from '@enrolld/db';
import type { Config } from '../config.js';

export interface Database {
  pool: pg.Pool;
  /** A small pool of its own for revocation (revokes, supersede batches, the broker's sync): renewals never starve it. */
  revocationPool: pg.Pool;
  /** The URL other connections (LISTEN feeds, BullMQ prefix) use: DATABASE_URL or the embedded server's. */
  url: string;
  embedded: boolean;
  /** Ends the pool, then stops the embedded Postgres if this process started it. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  config: Readonly<Config>;
  logger: Logger;
  /** Shows up in pg_stat_activity. */
  applicationName: string;
  poolMax: number;
  /** Only `enrolld up` may start the embedded Postgres; the other roles need a DATABASE_URL to share. */
  allowEmbedded: boolean;
  /** Stops waiting for an unreachable database (Ctrl-C during start). */
  signal?: AbortSignal | undefined;
  /** A role that must start while Postgres is down (the broker fails closed instead) does not wait for migrations. */
  waitForMigrations?: boolean;
}

const MIGRATE_RETRY_MS = 2000;

async function migrateWhenReachable(pool: pg.Pool, logger: Logger, signal: AbortSignal | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const applied = await migrate(pool);
      if (applied.length > 0) logger.info({ applied }, 'database migrated');
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error) || signal?.aborted) throw error;
      if (attempt === 1 || attempt % 15 === 0) logger.warn({ err: error }, 'waiting for Postgres');
      await new Promise((resolve) => setTimeout(resolve, MIGRATE_RETRY_MS));
    }
  }
}

/**
 * Builds a role on its own database: opens it, builds, and closes it again when building fails. The role's stop()
 * closes the database after the role itself has stopped.
 */
export async function buildOnDatabase<T extends { stop(): Promise<void> }>(options: OpenDatabaseOptions, build: (database: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(options);
  try {
    const built = await build(database);
    const stopRole = built.stop.bind(built);
    return Object.assign(built, {
      async stop() {
        await stopRole();
        await database.close();
      },
    });
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** The database of one process: embedded or DATABASE_URL, pooled, migrated (migrations are idempotent and locked). */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const { config, logger } = options;
  let url = config.databaseUrl;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!url) {
    if (!options.allowEmbedded) throw new Error(`${options.applicationName} needs DATABASE_URL (the Postgres that \`enrolld up\` or the API uses)`);
    logger.info({ dataDir: `${config.home}/pg` }, 'DATABASE_URL not set: starting embedded Postgres');
    const embedded = await startEmbeddedPostgres({ home: config.home, onLog: (line) => logger.debug({ postgres: line }) });
    stopEmbedded = () => embedded.stop();
    url = embedded.url;
  }
  // Every pool is bounded three ways: waiting for a connection, a statement on the server, and the client's wait for an answer.
  const timeouts = { connectionTimeoutMillis: config.dbCheckoutTimeoutMs, statementTimeoutMillis: config.dbStatementTimeoutMs, queryTimeoutMillis: config.dbQueryTimeoutMs };
  const pool = createPool({ connectionString: url, max: options.poolMax, ...timeouts, applicationName: options.applicationName });
  const revocationPool = createPool({ connectionString: url, max: config.dbRevocationPoolMax, ...timeouts, applicationName: `${options.applicationName}-revocation` });
  const close = async () => {
    await Promise.all([pool.end(), revocationPool.end()]);
    await stopEmbedded?.();
  };
  try {
    if (options.waitForMigrations ?? true) {
      await migrateWhenReachable(pool, logger, options.signal);
    } else {
      await migrate(pool).catch((error: unknown) => logger.warn({ err: error }, 'could not migrate (Postgres down?); refusing devices until the revocation state loads'));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { pool, revocationPool, url, embedded: stopEmbedded !== undefined, close };
}
