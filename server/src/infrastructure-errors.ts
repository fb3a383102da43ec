import { isDatabaseUnavailable, isPoolCheckoutTimeout } from '@enrolld/db';
import { EnrollError } from '@enrolld/core/errors.js';

/** A pool that is only busy frees up within a request's time; an unreachable database takes longer to come back. */
const BUSY_RETRY_AFTER_SECONDS = 1;
const DOWN_RETRY_AFTER_SECONDS = 5;

/**
 * Maps infrastructure failures to problems: a database that is down, or a pool with no connection free within
 * DB_CHECKOUT_TIMEOUT, is a 503 with Retry-After (RFC 9110 §10.2.3), not a 500 (docs/architecture.md §9).
 */
export function classifyInfrastructureError(error: unknown): EnrollError | undefined {
  if (isPoolCheckoutTimeout(error)) {
    return new EnrollError('unavailable', 'the server is busy; retry later', { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS, cause: error });
  }
  if (isDatabaseUnavailable(error)) {
    return new EnrollError('unavailable', 'the database is unavailable; retry later', { retryAfterSeconds: DOWN_RETRY_AFTER_SECONDS, cause: error });
  }
  return undefined;
}
