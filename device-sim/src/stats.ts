// Latency summaries for the report: exact percentiles over the recorded samples (nearest-rank).

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export class Samples {
  private readonly values: number[] = [];
  private sorted = true;

  add(value: number): void {
    if (!Number.isFinite(value)) return;
    if (this.values.length > 0 && value < (this.values.at(-1) ?? 0)) this.sorted = false;
    this.values.push(value);
  }

  get count(): number {
    return this.values.length;
  }

  percentile(p: number): number {
    if (this.values.length === 0) return Number.NaN;
    if (!this.sorted) {
      this.values.sort((a, b) => a - b);
      this.sorted = true;
    }
    const rank = Math.min(this.values.length - 1, Math.max(0, Math.ceil((p / 100) * this.values.length) - 1));
    return this.values[rank] ?? Number.NaN;
  }

  summary(): Summary {
    const n = this.values.length;
    const mean = n === 0 ? Number.NaN : this.values.reduce((a, b) => a + b, 0) / n;
    return { count: n, p50: this.percentile(50), p95: this.percentile(95), p99: this.percentile(99), max: this.percentile(100), mean };
  }
}

/** Least-squares slope of y over x (per unit of x). */
export function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
