// The fuzz targets' short smoke inside `npm test`: each target for a bounded number of executions from a fixed seed
// (about a minute in all on a busy machine). Long runs: `npm run fuzz -- <target> --runs 1000000`.
import { describe, expect, it } from '@jest/globals';
import { fuzz, type FuzzResult } from './engine.js';
import { targets } from './targets/index.js';

const SMOKE: Record<string, number> = { der: 100_000, csr: 40_000, mqtt: 2_500 };

describe('fuzz smoke', () => {
  it.each(Object.keys(SMOKE))('%s: no crash and no hang', async (name) => {
    const result: FuzzResult = await fuzz(targets[name]!, { runs: SMOKE[name]!, seed: 20_251_130 });
    process.stdout.write(`${JSON.stringify({ id: `FUZZ-${name}`, pass: result.crashes + result.hangs === 0, figures: result })}\n`);
    expect(result.failure).toBeUndefined();
    expect(result.runs).toBe(SMOKE[name]);
  }, 120_000);
});
