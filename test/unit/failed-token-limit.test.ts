import { describe, expect, it } from '@jest/globals';
import { createFailedTokenLimiter } from '../../server/src/http/failed-token-limit.js';

describe('failed-token limiter (a leaky bucket of failures per address)', () => {
  it('refuses an address once it holds the limit, until one failure has leaked away', () => {
    let now = 0;
    const limiter = createFailedTokenLimiter({ limit: 4, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 3; i++) {
      limiter.recordFailure('a');
      expect(limiter.waitMs('a')).toBeUndefined();
    }
    limiter.recordFailure('a');
    expect(limiter.waitMs('a')).toBe(15_000); // one failure leaks every 60 s / 4
    expect(limiter.waitMs('b')).toBeUndefined();
    now = 14_999;
    expect(limiter.waitMs('a')).toBe(1);
    now = 15_000;
    expect(limiter.waitMs('a')).toBeUndefined();
  });

  it('caps the bucket at twice the limit: failures of attempts already in flight make the wait at most about one window', () => {
    const limiter = createFailedTokenLimiter({ limit: 4, windowMs: 60_000, now: () => 0 });
    for (let i = 0; i < 100; i++) limiter.recordFailure('a');
    expect(limiter.waitMs('a')).toBe(75_000); // (8 - 3) failures to leak at 15 s each
  });

  it('keeps at most maxTracked addresses, forgetting the longest quiet first', () => {
    const limiter = createFailedTokenLimiter({ limit: 1, windowMs: 60_000, maxTracked: 3, now: () => 0 });
    for (const address of ['a', 'b', 'c']) limiter.recordFailure(address);
    limiter.recordFailure('a'); // a failed last now: b is the longest quiet
    limiter.recordFailure('d');
    expect(limiter.tracked()).toBe(3);
    expect(limiter.waitMs('b')).toBeUndefined();
    expect(limiter.waitMs('a')).toBeDefined();
    expect(limiter.waitMs('d')).toBeDefined();
  });

  it('limit 0 means no limit', () => {
    const limiter = createFailedTokenLimiter({ limit: 0, windowMs: 60_000 });
    for (let i = 0; i < 100; i++) limiter.recordFailure('a');
    expect(limiter.waitMs('a')).toBeUndefined();
    expect(limiter.tracked()).toBe(0);
  });
});
