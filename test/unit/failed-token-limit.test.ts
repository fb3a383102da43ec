import { describe, expect, it } from '@jest/globals';
import { createFailedTokenLimiter } from '../../server/src/http/failed-token-limit.js';

describe('failed-token limiter (a leaky bucket per address)', () => {
  it('refuses the attempt past the limit, and gives places back as failures leak away', () => {
    let now = 0;
    const limiter = createFailedTokenLimiter({ limit: 4, windowMs: 60_000, now: () => now });
    for (let i = 0; i < 4; i++) expect(limiter.reserve('a')).toBeUndefined();
    expect(limiter.reserve('a')).toBe(15_000); // one place leaks every 60 s / 4
    expect(limiter.reserve('b')).toBeUndefined();
    now = 14_999;
    expect(limiter.reserve('a')).toBe(1);
    now = 15_000;
    expect(limiter.reserve('a')).toBeUndefined();
    expect(limiter.reserve('a')).toBeDefined();
  });

  it('gives a place back when the attempt did not fail, and forgets an address with none taken', () => {
    const limiter = createFailedTokenLimiter({ limit: 2, windowMs: 60_000, now: () => 0 });
    for (let i = 0; i < 10; i++) {
      expect(limiter.reserve('a')).toBeUndefined();
      limiter.release('a');
    }
    expect(limiter.tracked()).toBe(0);
  });

  it('keeps at most maxTracked addresses, forgetting the oldest first', () => {
    const limiter = createFailedTokenLimiter({ limit: 1, windowMs: 60_000, maxTracked: 3, now: () => 0 });
    for (const address of ['a', 'b', 'c', 'd']) expect(limiter.reserve(address)).toBeUndefined();
    expect(limiter.tracked()).toBe(3);
    expect(limiter.reserve('a')).toBeUndefined(); // forgotten, so its place came back
    expect(limiter.reserve('d')).toBeDefined();
  });

  it('waitMs tells an address over its limit how long to wait, without taking a place', () => {
    const limiter = createFailedTokenLimiter({ limit: 2, windowMs: 60_000, now: () => 0 });
    expect(limiter.waitMs('a')).toBeUndefined();
    limiter.reserve('a');
    expect(limiter.waitMs('a')).toBeUndefined();
    expect(limiter.reserve('a')).toBeUndefined();
    expect(limiter.waitMs('a')).toBe(30_000);
    expect(limiter.tracked()).toBe(1);
  });

  it('limit 0 means no limit', () => {
    const limiter = createFailedTokenLimiter({ limit: 0, windowMs: 60_000 });
    for (let i = 0; i < 100; i++) expect(limiter.reserve('a')).toBeUndefined();
  });
});
