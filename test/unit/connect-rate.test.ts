import { describe, expect, it } from '@jest/globals';
import { createConnectRateLimit, MAX_CONNECT_REFUSAL_DELAY_MS } from '../../server/src/mqtt/connect-rate.js';

const limits = { connectRatePerSecond: 2, connectBurst: 3 };

describe('CONNECT rate per identity (token bucket)', () => {
  it('admits a burst, refuses the next with the wait until a token is due, and admits again once it is', () => {
    let now = 0;
    const rate = createConnectRateLimit({ now: () => now });
    for (let i = 0; i < limits.connectBurst; i++) expect(rate.check('dev-1', limits)).toEqual({ ok: true });
    expect(rate.check('dev-1', limits)).toEqual({ ok: false, delayMs: 500 });
    // Another identity has its own bucket.
    expect(rate.check('dev-2', limits)).toEqual({ ok: true });
    now = 400;
    expect(rate.check('dev-1', limits)).toEqual({ ok: false, delayMs: 100 });
    now = 500;
    expect(rate.check('dev-1', limits)).toEqual({ ok: true });
  });

  it('never holds a refusal longer than the cap, however slow the rate', () => {
    const rate = createConnectRateLimit({ now: () => 0 });
    const slow = { connectRatePerSecond: 0.01, connectBurst: 1 };
    expect(rate.check('dev-1', slow)).toEqual({ ok: true });
    expect(rate.check('dev-1', slow)).toEqual({ ok: false, delayMs: MAX_CONNECT_REFUSAL_DELAY_MS });
  });

  it('forgets identities whose bucket refilled, so memory follows the identities that reconnect now', () => {
    let now = 0;
    const rate = createConnectRateLimit({ now: () => now });
    for (let i = 0; i < 1000; i++) rate.check(`dev-${i}`, limits);
    expect(rate.tracked()).toBe(1000);
    // 1.5 s later every bucket is full again (one token used, refilled at 2 per second); the sweep drops them.
    now = 1500;
    for (let i = 0; i < 24; i++) rate.check('busy', limits);
    expect(rate.tracked()).toBe(1);
  });
});
