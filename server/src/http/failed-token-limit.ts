// A per-source-address limit on failed token attempts (bootstrap tokens on enrollment and EST, admin credentials):
// past it the address gets 429 with Retry-After (RFC 6585 §4) until its failures leak away. The address is the
// client's as express sees it: the socket's peer, or X-Forwarded-For only when the peer is a trusted proxy.
import type { Request, RequestHandler } from 'express';
import type { Counter } from 'prom-client';
import { EnrollError } from '@enrolld/core/errors.js';

export interface FailedTokenLimitOptions {
  /** Failures an address may have in one window; 0 turns the limit off. */
  limit: number;
  windowMs: number;
  /** Addresses tracked at most; past it, addresses whose failures have leaked away are forgotten first. */
  maxTracked?: number;
  now?: () => number;
}

interface Bucket {
  /** Failures not yet leaked, as of `at`. */
  level: number;
  at: number;
}

/**
 * A leaky bucket of failures per address: `limit` failures leak away per window, and an address whose bucket holds
 * `limit` is refused until one has leaked. Only failures count, so a burst of good requests from one address (a fleet
 * behind NAT, a provisioning station) is never refused. Attempts already in flight when the limit is reached still
 * finish; their failures fill the bucket further, up to twice the limit, so the longest wait is about one window.
 */
export function createFailedTokenLimiter(options: FailedTokenLimitOptions) {
  const now = options.now ?? Date.now;
  const maxTracked = options.maxTracked ?? 100_000;
  const leakPerMs = options.limit / options.windowMs;
  const buckets = new Map<string, Bucket>();

  function levelOf(bucket: Bucket, at: number): number {
    return Math.max(0, bucket.level - (at - bucket.at) * leakPerMs);
  }

  function forgetLeaked(at: number): void {
    for (const [address, bucket] of buckets) if (levelOf(bucket, at) === 0) buckets.delete(address);
    // Still full: the oldest entries go (a Map iterates in insertion order).
    for (const address of buckets.keys()) {
      if (buckets.size < maxTracked) break;
      buckets.delete(address);
    }
  }

  return {
    /** Milliseconds until the address may try again, or undefined when it may now. */
    waitMs(address: string): number | undefined {
      const bucket = options.limit === 0 ? undefined : buckets.get(address);
      if (!bucket) return undefined;
      const level = levelOf(bucket, now());
      return level > options.limit - 1 ? Math.ceil((level - (options.limit - 1)) / leakPerMs) : undefined;
    },
    /** One failed attempt from the address. */
    recordFailure(address: string): void {
      if (options.limit === 0) return;
      const at = now();
      const bucket = buckets.get(address);
      if (!bucket && buckets.size >= maxTracked) forgetLeaked(at);
      const level = bucket ? levelOf(bucket, at) : 0;
      buckets.delete(address); // re-inserted last: the Map stays ordered by last failure
      buckets.set(address, { level: Math.min(level + 1, 2 * options.limit), at });
    },
    tracked(): number {
      return buckets.size;
    },
  };
}

export type FailedTokenLimiter = ReturnType<typeof createFailedTokenLimiter>;

export interface FailedTokenMetrics {
  failures: Counter<'route'>;
  throttled: Counter<'route'>;
}

/**
 * Guards one token route: refuses an address over its limit, and counts a 401 as a failed attempt when the request
 * presented a credential. A request without one is no guess (an HTTP client that waits for the 401 challenge before it
 * sends Basic credentials, RFC 9110 §11.6.1), so it counts for nothing, though an address over its limit is refused.
 */
export function limitFailedTokenAttempts(
  limiter: FailedTokenLimiter,
  metrics: FailedTokenMetrics,
  route: string,
  presentsCredential: (req: Request) => boolean,
): RequestHandler {
  return (req, res, next) => {
    const address = req.ip ?? 'unknown';
    const waitMs = limiter.waitMs(address);
    if (waitMs !== undefined) {
      metrics.throttled.inc({ route });
      next(
        new EnrollError('too-many-requests', 'too many failed token attempts from this address; retry later', {
          retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
          logDetail: `failed token attempts over the limit for ${address}`,
        }),
      );
      return;
    }
    if (presentsCredential(req)) {
      res.once('finish', () => {
        if (res.statusCode !== 401) return;
        metrics.failures.inc({ route });
        limiter.recordFailure(address);
      });
    }
    next();
  };
}
