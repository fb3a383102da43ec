// Reading the server's Prometheus text at the end of a run, so a report can split a delay into the server's share
// (measured where it happens) and the rest (network, simulator scheduling).

/**
 * The upper bound of the histogram bucket holding quantile `q` (Prometheus `le` buckets are cumulative), in the
 * histogram's unit; undefined when the histogram is absent or empty, Infinity when the quantile is past the last bound.
 */
export function histogramQuantileBound(text: string, name: string, q: number): number | undefined {
  const buckets: Array<{ le: number; count: number }> = [];
  const pattern = new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\d+(?:\\.\\d+)?)$`, 'gm');
  for (const m of text.matchAll(pattern)) {
    buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total === 0) return undefined;
  return buckets.find((b) => b.count >= q * total)?.le;
}

/** The value of an unlabelled sample (a gauge or counter such as `process_cpu_seconds_total`); undefined when absent. */
export function sampleValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name}(?:\\{\\})? (-?[0-9.eE+-]+|NaN)(?: \\d+)?$`, 'm').exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  return Number.isFinite(value) ? value : undefined;
}
