// Injected randomness for jitter, so runs are reproducible with --seed and unit tests are deterministic.
// Not for keys or tokens: those come from node:crypto.

export type Rng = () => number;

/** mulberry32: small, fast, good enough to spread timers. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const mathRng: Rng = Math.random;
