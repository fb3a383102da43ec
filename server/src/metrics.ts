import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

export interface ServerMetrics {
  registry: Registry;
  enrollments: Counter<'outcome'>;
  issuanceSeconds: Histogram<'outcome'>;
}

export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    enrollments: new Counter({
      name: 'enrolld_enrollments_total',
      help: 'Enrollment requests by outcome (issued, replayed, rejected, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    issuanceSeconds: new Histogram({
      name: 'enrolld_enrollment_duration_seconds',
      help: 'Time from request to answer for enrollments, by outcome',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
