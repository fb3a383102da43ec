// The simulator's concurrency gate (device-sim/src/limiter.ts): waiters in arrival order, a `first` waiter (the
// old-certificate probe) ahead of them, and never more than the concurrency in flight.
import { describe, expect, it } from '@jest/globals';
import { createLimiter } from '../../device-sim/src/limiter.js';

describe('simulator limiter', () => {
  it('serves waiters in arrival order, a first waiter ahead of them, within the concurrency', async () => {
    const limiter = createLimiter({ concurrency: 1, ratePerSecond: 0 });
    const order: string[] = [];
    const holder = await limiter.acquire();
    const waiters = [
      limiter.acquire().then((release) => (order.push('a'), release)),
      limiter.acquire().then((release) => (order.push('b'), release)),
      limiter.acquire(true).then((release) => (order.push('probe'), release)),
    ];
    expect(limiter.inFlight).toBe(1);
    expect(limiter.waiting).toBe(3);
    holder();
    // each release lets exactly one more in
    let release = await waiters[2]!;
    expect(order).toEqual(['probe']);
    expect(limiter.inFlight).toBe(1);
    release();
    release = await waiters[0]!;
    expect(order).toEqual(['probe', 'a']);
    release();
    (await waiters[1]!)();
    expect(order).toEqual(['probe', 'a', 'b']);
    expect(limiter.inFlight).toBe(0);
    limiter.close();
  });
});
