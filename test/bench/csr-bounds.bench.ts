// `npm run bench:csr`: how long each hostile CSR input (test/support/hostile-csrs.ts) takes to be refused, and how long it
// blocks the event loop, against the parse of a valid CSR measured in the same run. The target is < 50 ms of event-loop
// delay per hostile input; a quadratic or recursive parser would take seconds.
// One JSON line per figure: {"metric","case","value","unit","baseline","ratio",…}; ratio = value / baseline (< 1: cheaper than
// parsing a valid CSR).
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseCsr } from '@enrolld/core/ca/index.js';
import { buildCsr, rejectionOf } from '../support/csr-factory.js';
import { hostileCsrs } from '../support/hostile-csrs.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const TARGET_DELAY_MS = 50;

const round = (v: number) => Number(v.toFixed(3));
const print = (figure: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(figure)}\n`);

/** Parses `input` RUNS times, each in its own event-loop turn: worst and median parse time, worst event-loop delay. */
async function measure(parse: () => void): Promise<{ worstMs: number; p50Ms: number; maxDelayMs: number }> {
  const times: number[] = [];
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  for (let i = 0; i < RUNS; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const t0 = performance.now();
    parse();
    times.push(performance.now() - t0);
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  times.sort((a, b) => a - b);
  return { worstMs: times.at(-1) ?? NaN, p50Ms: times[Math.floor(times.length / 2)] ?? NaN, maxDelayMs: histogram.max / 1e6 };
}

const valid = buildCsr({ cn: 'bench-valid' }).der;
await measure(() => parseCsr(valid)); // warm-up: JIT and first-use allocations stay out of the baseline
const baseline = await measure(() => parseCsr(valid));
print({ metric: 'csr_parse_ms', case: 'valid CSR (baseline)', value: round(baseline.p50Ms), unit: 'ms p50', baseline: null, ratio: null, runs: RUNS });

for (const [name, make, detail] of hostileCsrs) {
  const input = make();
  const got = await measure(() => {
    const rejection = rejectionOf(() => parseCsr(input));
    if (rejection?.kind !== 'bad-csr' || !detail.test(rejection.detail ?? '')) throw new Error(`${name}: not refused as expected: ${JSON.stringify(rejection)}`);
  });
  print({ metric: 'csr_reject_ms', case: name, value: round(got.p50Ms), unit: 'ms p50', worst: round(got.worstMs), baseline: round(baseline.p50Ms), ratio: round(got.p50Ms / baseline.p50Ms), runs: RUNS });
  print({ metric: 'csr_event_loop_delay_ms', case: name, value: round(got.maxDelayMs), unit: 'ms max', baseline: round(baseline.maxDelayMs), ratio: round(got.maxDelayMs / baseline.maxDelayMs), target: TARGET_DELAY_MS, met: got.maxDelayMs < TARGET_DELAY_MS });
}
