// Backoff and renewal timing as pure functions.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DEFAULT_RENEWAL, backoffCeiling, backoffDelay, renewalTime, seededRng } from '@enrolld/device-sim';

const policy = { baseMs: 500, capMs: 15_000, floorMs: 50 };

describe('full-jitter backoff', () => {
  it('stays within [floor, min(cap, base·2^attempt)] for any attempt', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const d = backoffDelay(attempt, policy, () => r);
        return d >= policy.floorMs && d <= Math.min(policy.capMs, policy.baseMs * 2 ** attempt) && Number.isFinite(d);
      }),
    );
  });

  it('doubles the ceiling until the cap', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((a) => backoffCeiling(a, policy))).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  });

  it('spreads delays evenly over the window (deciles within ±2 points of 10%)', () => {
    const rng = seededRng(7);
    const n = 20_000;
    const deciles = Array.from({ length: 10 }, () => 0);
    for (let i = 0; i < n; i++) {
      const d = backoffDelay(20, policy, rng);
      deciles[Math.min(9, Math.floor(((d - policy.floorMs) / (policy.capMs - policy.floorMs)) * 10))]!++;
    }
    for (const c of deciles) expect(Math.abs(c / n - 0.1)).toBeLessThan(0.02);
  });
});

describe('renewal time', () => {
  it('falls in 2/3 ± 1/12 of the lifetime and never after expiry minus the lead', () => {
    fc.assert(
      fc.property(fc.integer({ min: 10_000, max: 400 * 86_400_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (lifetime, r) => {
        const nb = 1_000_000;
        const at = renewalTime(nb, nb + lifetime, nb, DEFAULT_RENEWAL, () => r);
        const f = (at - nb) / lifetime;
        return f >= 2 / 3 - 1 / 12 - 1e-9 && f <= 2 / 3 + 1 / 12 + 1e-9 && at <= nb + lifetime - DEFAULT_RENEWAL.minLeadMs;
      }),
    );
  });

  it("with the server's renewAfter: never before it, within the first half of the window, and never after expiry minus the lead", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10_000, max: 400 * 86_400_000 }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (lifetime, windowAt, r) => {
          const nb = 1_000_000;
          const renewAfter = nb + lifetime * windowAt;
          const at = renewalTime(nb, nb + lifetime, nb, DEFAULT_RENEWAL, () => r, renewAfter);
          const latest = nb + lifetime - Math.max(DEFAULT_RENEWAL.minLeadMs, lifetime * 0.05);
          return at <= latest && at <= renewAfter + (nb + lifetime - renewAfter) / 2 + 1e-6 && (at >= renewAfter - 1e-6 || at === latest);
        },
      ),
    );
  });

  it('ignores a renewAfter outside the validity period', () => {
    expect(renewalTime(0, 60_000, 0, DEFAULT_RENEWAL, () => 0.5, 90_000)).toBe(40_000);
    expect(renewalTime(0, 60_000, 0, DEFAULT_RENEWAL, () => 0.5, -1)).toBe(40_000);
  });

  it('renews at once when already past the point, but not before now', () => {
    const at = renewalTime(0, 60_000, 55_000, DEFAULT_RENEWAL, () => 0.5);
    expect(at).toBe(55_000);
  });

  it('keeps a lead for very short certificates', () => {
    const at = renewalTime(0, 3_000, 0, { fraction: 0.99, jitterFraction: 0, minLeadMs: 2_000 }, () => 0.5);
    expect(at).toBe(1_000);
  });
});
