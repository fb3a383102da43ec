import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** One registry per process: every role of `enrolld up` registers into the same one, and /metrics serves it. */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** What the use cases report: enrollments and renewals by outcome, predecessors superseded by trigger, CRL rebuilds. */
export function createUseCaseMetrics(registry: Registry) {
  return {
    enrollments: new Counter({
      name: 'enrolld_enrollments_total',
      help: 'Enrollment requests by outcome (issued, replayed, rejected, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    enrollmentSeconds: new Histogram({
      name: 'enrolld_enrollment_duration_seconds',
      help: 'Time from request to answer for enrollments, by outcome',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    renewals: new Counter({
      name: 'enrolld_renewals_total',
      help: 'Renewal requests by transport (rest, est, mqtt) and outcome (issued, replayed, rejected, failed)',
      labelNames: ['transport', 'outcome'],
      registers: [registry],
    }),
    renewalSeconds: new Histogram({
      name: 'enrolld_renewal_duration_seconds',
      help: 'Time from request to answer for renewals, by transport and outcome',
      labelNames: ['transport', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    superseded: new Counter({
      name: 'enrolld_rotation_superseded_total',
      help: 'Predecessors revoked as superseded, by trigger (first-connect, grace)',
      labelNames: ['trigger'],
      registers: [registry],
    }),
    crlRebuilds: new Counter({
      name: 'enrolld_crl_rebuilds_total',
      help: 'CRL rebuilds by outcome (stored, failed); coalesced to at most one per CRL_MIN_INTERVAL',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    bulkRevoked: new Counter({
      name: 'enrolld_bulk_revoked_certificates_total',
      help: 'Certificates revoked by bulk revocation jobs',
      registers: [registry],
    }),
  };
}

export type UseCaseMetrics = ReturnType<typeof createUseCaseMetrics>;
