import type { Logger } from 'pino';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { createPool, isDatabaseUnavailable, migrate, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@enrolld/db';
import type { Config } from '../config.js';
import { createEmbeddedPostgresMetrics } from '../metrics.js';

export interface Database {
  pool: pg.Pool;
  /** A small pool of its own for revocation (revokes, supersede batches, the broker's sync): renewals never starve it. */
  revocationPool: pg.Pool;
  /** The URL other connections (LISTEN feeds, BullMQ prefix) use: DATABASE_URL or the embedded server's. */
  url: string;
  embedded: boolean;
  /**
   * Rejects when the embedded Postgres died and did not come back after EMBEDDED_PG_MAX_RESTARTS restarts in a row:
   * the process should exit non-zero so an outer supervisor can act. Never settles for a DATABASE_URL.
   */
  failed: Promise<never>;
  /**
   * Stops restarting the embedded Postgres: the first step of an ordered stop, so that its exit from then on (a terminal's
   * Ctrl-C reaches it too) is neither logged as a crash nor restarted.
   */
  endSupervision(): void;
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
  /** Where the embedded Postgres supervision counts its restarts. */
  registry?: Registry;
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
  let failed = new Promise<never>(() => undefined);
  let endSupervision: () => void = () => undefined;
  if (!url) {
    if (!options.allowEmbedded) throw new Error(`${options.applicationName} needs DATABASE_URL (the Postgres that \`enrolld up\` or the API uses)`);
    logger.info({ dataDir: `${config.home}/pg` }, 'DATABASE_URL not set: starting embedded Postgres');
    const embedded = await startEmbeddedPostgres({ home: config.home, onLog: (line) => logger.debug({ postgres: line }) });
    const supervision = superviseEmbeddedPostgres(embedded, { ...config.embeddedPostgres, logger, registry: options.registry });
    failed = supervision.failed;
    endSupervision = () => supervision.stop();
    stopEmbedded = async () => {
      supervision.stop();
      await embedded.stop();
    };
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
  return { pool, revocationPool, url, embedded: stopEmbedded !== undefined, failed, endSupervision, close };
}

/** A cluster that stays up this long after a restart is healthy again: the count of restarts in a row starts over. */
const STABLE_AFTER_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

/**
 * `enrolld up` restarts its embedded Postgres when it dies (killed, crashed), after a delay that doubles per restart
 * in a row (EMBEDDED_PG_RESTART_DELAY, up to 30 s). Meanwhile requests get 503 + Retry-After and the broker admits from
 * its last state until BROKER_MAX_STALENESS (docs/architecture.md §9). After EMBEDDED_PG_MAX_RESTARTS restarts in a
 * row that did not last `STABLE_AFTER_MS`, `failed` rejects and the process exits non-zero.
 */
export function superviseEmbeddedPostgres(
  embedded: EmbeddedPostgresHandle,
  options: { maxRestarts: number; restartDelayMs: number; logger: Logger; registry?: Registry | undefined },
): { failed: Promise<never>; stop(): void } {
  const { logger } = options;
  const metrics = options.registry ? createEmbeddedPostgresMetrics(options.registry) : undefined;
  let giveUp: (error: Error) => void = () => undefined;
  const failed = new Promise<never>((_resolve, reject) => {
    giveUp = reject;
  });
  // Nobody may be listening yet (a start that has not reached listen()); the rejection is still delivered to later awaits.
  failed.catch(() => undefined);
  let restartsInARow = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const restart = async (downSince: number): Promise<void> => {
    timer = undefined;
    if (stopped) return;
    try {
      await embedded.restart();
    } catch (error) {
      metrics?.restarts.inc({ outcome: 'failed' });
      logger.error({ err: error, attempt: restartsInARow, maxRestarts: options.maxRestarts }, 'embedded Postgres did not restart');
      scheduleRestart(downSince);
      return;
    }
    metrics?.restarts.inc({ outcome: 'restarted' });
    logger.warn({ attempt: restartsInARow, pid: embedded.pid(), downMs: Date.now() - downSince }, 'embedded Postgres restarted');
    const attempt = restartsInARow;
    timer = setTimeout(() => {
      timer = undefined;
      if (restartsInARow === attempt) restartsInARow = 0;
    }, STABLE_AFTER_MS);
    timer.unref();
  };

  const scheduleRestart = (downSince: number): void => {
    if (stopped) return;
    if (restartsInARow >= options.maxRestarts) {
      const error = new Error(`embedded Postgres is down and did not come back after ${restartsInARow} restarts (EMBEDDED_PG_MAX_RESTARTS)`);
      logger.fatal({ restarts: restartsInARow }, error.message);
      giveUp(error);
      return;
    }
    restartsInARow++;
    const delayMs = Math.min(MAX_RESTART_DELAY_MS, options.restartDelayMs * 2 ** (restartsInARow - 1));
    logger.warn({ attempt: restartsInARow, maxRestarts: options.maxRestarts, delayMs }, 'restarting embedded Postgres');
    timer = setTimeout(() => void restart(downSince), delayMs);
  };

  embedded.onExit((exit) => {
    if (stopped) return;
    clearTimeout(timer);
    logger.error({ code: exit.code, signal: exit.signal, lastLog: exit.lastLog }, 'embedded Postgres exited');
    scheduleRestart(Date.now());
  });

  return {
    failed,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
