import { isDatabaseUnavailable } from '@enrolld/db';
import { EnrollError } from '@enrolld/core/errors.js';

/** Maps infrastructure failures to problems: a database that is down is a 503 with Retry-After, not a 500. */
export function classifyInfrastructureError(error: unknown): EnrollError | undefined {
  if (isDatabaseUnavailable(error)) {
    return new EnrollError('unavailable', 'the database is unavailable; retry later', { retryAfterSeconds: 5, cause: error });
  }
  return undefined;
}
