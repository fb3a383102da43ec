// A token bucket: `ratePerSecond` tokens flow in, at most `burst` are held, each admitted event takes one. The rate
// and burst are passed on every call, so a bucket follows limits that change (a connection's limits once admitted).
export interface TokenBucket {
  tokens: number;
  refilledAt: number;
}

export interface BucketRate {
  ratePerSecond: number;
  burst: number;
}

/** A full bucket at `now` (milliseconds). */
export function fullBucket(rate: BucketRate, now: number): TokenBucket {
  return { tokens: rate.burst, refilledAt: now };
}

function refill(bucket: TokenBucket, rate: BucketRate, now: number): void {
  bucket.tokens = Math.min(rate.burst, bucket.tokens + (Math.max(0, now - bucket.refilledAt) / 1000) * rate.ratePerSecond);
  bucket.refilledAt = Math.max(bucket.refilledAt, now);
}

/** Takes a token if the bucket holds one. */
export function tryTake(bucket: TokenBucket, rate: BucketRate, now: number): boolean {
  refill(bucket, rate, now);
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/**
 * Takes a token now and owes it when there is none: the milliseconds until the debt is paid (0 when a token was
 * there), or undefined, taking nothing, when the debt would exceed a whole burst.
 */
export function takeOrOwe(bucket: TokenBucket, rate: BucketRate, now: number): number | undefined {
  refill(bucket, rate, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  if (bucket.tokens - 1 < -rate.burst) return undefined;
  bucket.tokens -= 1;
  return (-bucket.tokens / rate.ratePerSecond) * 1000;
}

/** Milliseconds until the bucket holds one token (0 when it does). */
export function msUntilToken(bucket: TokenBucket, rate: BucketRate, now: number): number {
  refill(bucket, rate, now);
  return bucket.tokens >= 1 ? 0 : ((1 - bucket.tokens) / rate.ratePerSecond) * 1000;
}

/** True when the bucket has refilled to its burst: it remembers nothing a new full bucket would not. */
export function isFull(bucket: TokenBucket, rate: BucketRate, now: number): boolean {
  refill(bucket, rate, now);
  return bucket.tokens >= rate.burst;
}
