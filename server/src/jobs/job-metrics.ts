// Job counts and failures on /metrics: what ran, what failed, what stalled (FLT-06), what waits.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface JobMetrics {
  finished(queue: string, name: string, outcome: 'completed' | 'failed'): void;
  stalled(queue: string): void;
  redisUp(up: boolean): void;
  hintSent(): void;
  superseded(count: number): void;
}

export interface JobCountsSource {
  queue: string;
  /** Counts by state; may reject or hang when Redis is down (the collector times out). */
  counts(): Promise<Record<string, number>>;
}

export function createJobMetrics(registry: Registry, sources: () => JobCountsSource[]): JobMetrics {
  const jobs = new Counter({
    name: 'enrolld_jobs_total',
    help: 'Background jobs finished by this process, by queue, job name and outcome (completed, failed)',
    labelNames: ['queue', 'name', 'outcome'],
    registers: [registry],
  });
  const stalled = new Counter({
    name: 'enrolld_jobs_stalled_total',
    help: 'Jobs found stalled (their worker crashed or blocked past lockDuration) and run again',
    labelNames: ['queue'],
    registers: [registry],
  });
  const redis = new Gauge({ name: 'enrolld_jobs_redis_up', help: '1 when the job queue\'s Redis connection is ready', registers: [registry] });
  const hints = new Counter({ name: 'enrolld_rotation_hints_sent_total', help: 'Rotation hints sent (at most one per certificate)', registers: [registry] });
  const superseded = new Counter({
    name: 'enrolld_rotation_superseded_by_grace_total',
    help: 'Predecessors revoked as superseded because the grace period passed without the successor connecting',
    registers: [registry],
  });
  new Gauge({
    name: 'enrolld_job_queue_jobs',
    help: 'Jobs in each queue by state (waiting, active, delayed, completed, failed), as Redis reports them at scrape time',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        sources().map(async (source) => {
          let timer: NodeJS.Timeout | undefined;
          try {
            // A scrape must not hang on a Redis outage.
            const counts = await Promise.race([
              source.counts(),
              new Promise<undefined>((resolve) => {
                timer = setTimeout(() => resolve(undefined), 500);
              }),
            ]);
            for (const [state, n] of Object.entries(counts ?? {})) this.set({ queue: source.queue, state }, n);
          } catch {
            // Redis down: no sample (enrolld_jobs_redis_up says why).
          } finally {
            clearTimeout(timer);
          }
        }),
      );
    },
  });
  redis.set(0);
  return {
    finished: (queue, name, outcome) => jobs.inc({ queue, name, outcome }),
    stalled: (queue) => stalled.inc({ queue }),
    redisUp: (up) => redis.set(up ? 1 : 0),
    hintSent: () => hints.inc(),
    superseded: (count) => superseded.inc(count),
  };
}
