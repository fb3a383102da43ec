// The one way db opens a transaction, and the advisory-lock keys it takes (any fixed 64-bit values private to this
// schema; Postgres advisory locks, "Explicit Locking" §13.3.5).
import type pg from 'pg';
import { BULK_TIMEOUT_MS, isQueryTimeout, withQueryTimeout } from './pool.js';

/** Serialises concurrent migrators (API and broker processes starting together); a session lock (migrate.ts). */
export const MIGRATION_LOCK_KEY = 7_160_002_331;

/**
 * Serialises appends to the audit hash chain (db/migrations/007_fleet_admin.sql): taken by the chain trigger at COMMIT,
 * after every other lock of the transaction, and held only until the commit completes.
 */
export const AUDIT_CHAIN_LOCK_KEY = 7_160_002_340;

/**
 * With an environment's name (hashtext) as the second key: one CRL rebuild of that environment at a time across every
 * process (db/src/revocation-store.ts). The two-key form lives apart from the one-key locks above.
 */
export const CRL_LOCK_CLASS = 71_600_024;

/** Serialises role changes and revocations of admins, so two owners cannot demote or revoke each other past the last one. */
export const ADMINS_LOCK_KEY = 7_160_002_352;

/**
 * What a transaction takes before any row lock:
 *  - 'revocation': the revocation lock, exclusively. One writer at a time hands out revocation seqs and CRL numbers
 *    (the trigger in 002_revocation.sql takes the same key again); taking it first keeps a device revoke and a serial
 *    revoke of the same row from deadlocking.
 *  - 'renewal': the same lock, shared. Renewals run side by side but never interleave with a revocation: otherwise a
 *    device revoke whose UPDATE snapshot predates a successor committed while the UPDATE waited on the predecessor's
 *    row lock would leave that successor live.
 */
export type TransactionLock = 'none' | 'revocation' | 'renewal';

// Each opening is one fixed statement sent with the simple query protocol, which runs several statements in one round
// trip (parameters would cost one round trip per statement). 7160002332 is the revocation lock key of 002_revocation.sql.
const OPENING: Record<TransactionLock, string> = {
  none: 'BEGIN',
  revocation: 'BEGIN; SELECT pg_advisory_xact_lock(7160002332)',
  renewal: 'BEGIN; SELECT pg_advisory_xact_lock_shared(7160002332)',
};

/**
 * Runs `work` in a transaction on a connection the caller holds: COMMIT when it returns, ROLLBACK when it throws.
 * After a query timeout the server is not answering, so no ROLLBACK is sent (it would wait as long again): the caller
 * must discard the connection, and Postgres rolls the transaction back when the connection closes.
 */
export async function transactionOn<T>(client: pg.ClientBase, lock: TransactionLock, work: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  await client.query(OPENING[lock]);
  try {
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    if (!isQueryTimeout(error)) await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Runs `work` in a transaction on a pooled connection, released afterwards (discarded after a query timeout). With
 * `bulk`, its statements run under BULK_TIMEOUT_MS instead of the pool's statement and query timeouts.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  lock: TransactionLock,
  work: (client: pg.ClientBase) => Promise<T>,
  options: { bulk?: boolean } = {},
): Promise<T> {
  const pooled = await pool.connect();
  const client = options.bulk ? withQueryTimeout(pooled, BULK_TIMEOUT_MS) : pooled;
  let failure: Error | undefined;
  try {
    return await transactionOn(client, lock, async (tx) => {
      // SET LOCAL: ends with the transaction, so the connection goes back to the pool with the pool's bound.
      if (options.bulk) await tx.query(`SELECT set_config('statement_timeout', $1, true)`, [String(BULK_TIMEOUT_MS)]);
      return work(tx);
    });
  } catch (error) {
    if (isQueryTimeout(error)) failure = error as Error;
    throw error;
  } finally {
    pooled.release(failure);
  }
}
