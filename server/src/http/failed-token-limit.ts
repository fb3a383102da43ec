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
  /** Failures (and attempts in flight) not yet leaked, as of `at`. */
  level: number;
  at: number;
}

/**
 * A leaky bucket per address: each attempt takes one place before it runs (so a burst sent at once is limited as
 * well as a sequence), a success gives its place back, and `limit` places leak away per window.
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

  /** Milliseconds until the address has a place again, or undefined when it has one. */
  function waitOf(level: number): number | undefined {
    return level > options.limit - 1 ? Math.ceil((level - (options.limit - 1)) / leakPerMs) : undefined;
  }

  return {
    /** The milliseconds the address must wait, without taking a place (a request that presents no credential). */
    waitMs(address: string): number | undefined {
      const bucket = options.limit === 0 ? undefined : buckets.get(address);
      return bucket ? waitOf(levelOf(bucket, now())) : undefined;
    },
    /** Takes a place for one attempt; answers the milliseconds to wait instead when the address has none left. */
    reserve(address: string): number | undefined {
      if (options.limit === 0) return undefined;
      const at = now();
      const bucket = buckets.get(address);
      const level = bucket ? levelOf(bucket, at) : 0;
      const wait = waitOf(level);
      if (wait !== undefined) return wait;
      if (!bucket && buckets.size >= maxTracked) forgetLeaked(at);
      buckets.set(address, { level: level + 1, at });
      return undefined;
    },
    /** The attempt did not fail on its token: its place comes back. */
    release(address: string): void {
      const bucket = buckets.get(address);
      if (!bucket) return;
      const at = now();
      const level = levelOf(bucket, at) - 1;
      if (level <= 0) buckets.delete(address);
      else buckets.set(address, { level, at });
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
 * sends Basic credentials, RFC 9110 §11.6.1), so it takes no place, though an address over its limit is still refused.
 */
export function limitFailedTokenAttempts(
  limiter: FailedTokenLimiter,
  metrics: FailedTokenMetrics,
  route: string,
  presentsCredential: (req: Request) => boolean,
): RequestHandler {
  return (req, res, next) => {
    const address = req.ip ?? 'unknown';
    const counted = presentsCredential(req);
    const waitMs = counted ? limiter.reserve(address) : limiter.waitMs(address);
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
    if (!counted) return next();
    res.once('close', () => {
      if (res.statusCode === 401) metrics.failures.inc({ route });
      else limiter.release(address);
    });
    next();
  };
}
