import { describe, expect, it } from '@jest/globals';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { histogramQuantileBound, sampleValue } from '../../device-sim/src/server-metrics.js';

// The simulator reads the exposition format prom-client writes, so the test feeds it exactly that.
async function exposition(observations: number[], labels?: Record<string, string>): Promise<string> {
  const registry = new Registry();
  const h = new Histogram({ name: 'x_delay_seconds', help: 'x', buckets: [0.01, 0.1, 1], labelNames: labels ? Object.keys(labels) : [], registers: [registry] });
  for (const v of observations) (labels ? h.observe(labels, v) : h.observe(v));
  return registry.metrics();
}

describe('histogramQuantileBound', () => {
  it('answers the upper bound of the bucket that holds the quantile', async () => {
    const text = await exposition([0.005, 0.005, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.5, 0.5]);
    expect(histogramQuantileBound(text, 'x_delay_seconds', 0.5)).toBe(0.1);
    expect(histogramQuantileBound(text, 'x_delay_seconds', 0.2)).toBe(0.01);
    expect(histogramQuantileBound(text, 'x_delay_seconds', 0.99)).toBe(1);
  });

  it('says Infinity past the last bound, undefined for an absent or empty histogram, and reads labelled series', async () => {
    expect(histogramQuantileBound(await exposition([5]), 'x_delay_seconds', 0.99)).toBe(Infinity);
    expect(histogramQuantileBound(await exposition([]), 'x_delay_seconds', 0.5)).toBeUndefined();
    expect(histogramQuantileBound(await exposition([0.05]), 'y_delay_seconds', 0.5)).toBeUndefined();
    expect(histogramQuantileBound(await exposition([0.05], { node: 'a' }), 'x_delay_seconds', 0.5)).toBe(0.1);
  });
});

describe('sampleValue', () => {
  it('reads an unlabelled gauge and counter as prom-client writes them, and nothing of another name', async () => {
    const registry = new Registry();
    new Gauge({ name: 'x_resident_bytes', help: 'x', registers: [registry] }).set(123456789);
    new Counter({ name: 'x_cpu_seconds_total', help: 'x', registers: [registry] }).inc(12.5);
    new Gauge({ name: 'x_resident_bytes_peak', help: 'x', registers: [registry] }).set(1);
    const text = await registry.metrics();
    expect(sampleValue(text, 'x_resident_bytes')).toBe(123456789);
    expect(sampleValue(text, 'x_cpu_seconds_total')).toBe(12.5);
    expect(sampleValue(text, 'x_missing')).toBeUndefined();
  });
});
