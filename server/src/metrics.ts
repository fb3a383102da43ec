import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
    supersedeSeconds: new Histogram({
      name: 'enrolld_rotation_supersede_delay_seconds',
      help: "Time from a successor's first CONNECT to its predecessor's supersede committed (the batch window included)",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
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

/** The windows of `enrolld_certificates_expiring{within}`. */
export const EXPIRY_WINDOWS = { '1d': 86_400, '7d': 7 * 86_400, '30d': 30 * 86_400 } as const;

export interface FleetMetricsSource {
  expiring(windowsSeconds: number[]): Promise<Array<{ withinSeconds: number; expiring: number; withoutSuccessor: number }>>;
  latestCrlTimes(): Promise<{ thisUpdate: Date; nextUpdate: Date } | undefined>;
  /** Devices connected on any live broker node, by profile (the presence store). */
  connectedByProfile(): Promise<Array<{ profile: string; count: number }>>;
}

/**
 * Fleet gauges read from the database at scrape time (the API process): certificates expiring within 1d/7d/30d, those
 * of them without a successor, connected devices by profile, and the age and validity of the newest CRL.
 */
export function createFleetMetrics(registry: Registry, source: FleetMetricsSource): void {
  const windows = Object.entries(EXPIRY_WINDOWS);
  let expiringRead: { at: number; value: ReturnType<FleetMetricsSource['expiring']> } | undefined;
  const expiring = () => {
    // A database that does not answer leaves the gauges as they were: /metrics keeps working for the other metrics.
    if (!expiringRead || Date.now() - expiringRead.at > 1000) expiringRead = { at: Date.now(), value: source.expiring(windows.map(([, s]) => s)).catch(() => []) };
    return expiringRead.value;
  };
  const labelOf = (seconds: number) => windows.find(([, s]) => s === seconds)![0];
  new Gauge({
    name: 'enrolld_certificates_expiring',
    help: 'Live certificates (issued, unrevoked, unexpired) whose notAfter is within the window',
    labelNames: ['within'] as const,
    registers: [registry],
    async collect() {
      for (const w of await expiring()) this.set({ within: labelOf(w.withinSeconds) }, w.expiring);
    },
  });
  new Gauge({
    name: 'enrolld_certificates_expiring_without_successor',
    help: 'Live certificates expiring within the window for which no successor was issued yet',
    labelNames: ['within'] as const,
    registers: [registry],
    async collect() {
      for (const w of await expiring()) this.set({ within: labelOf(w.withinSeconds) }, w.withoutSuccessor);
    },
  });
  new Gauge({
    name: 'enrolld_connected_devices_by_profile',
    help: 'Devices with a live session on any broker node (heartbeat not expired), by device profile',
    labelNames: ['profile'] as const,
    registers: [registry],
    async collect() {
      const counts = await source.connectedByProfile().catch(() => undefined);
      if (!counts) return;
      this.reset();
      for (const c of counts) this.set({ profile: c.profile }, c.count);
    },
  });
  new Gauge({
    name: 'enrolld_crl_age_seconds',
    help: 'Seconds since the thisUpdate of the newest stored CRL',
    registers: [registry],
    async collect() {
      const crl = await source.latestCrlTimes().catch(() => undefined);
      if (crl) this.set((Date.now() - crl.thisUpdate.getTime()) / 1000);
    },
  });
  new Gauge({
    name: 'enrolld_crl_validity_seconds',
    help: 'nextUpdate - thisUpdate of the newest stored CRL',
    registers: [registry],
    async collect() {
      const crl = await source.latestCrlTimes().catch(() => undefined);
      if (crl) this.set((crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 1000);
    },
  });
}

/** Failed token attempts per route (enroll, est, admin) and the requests a source address had refused for them. */
export function createFailedTokenMetrics(registry: Registry) {
  return {
    failures: new Counter({
      name: 'enrolld_http_token_failures_total',
      help: 'Requests answered 401 on a token route (enroll, est, admin), by route',
      labelNames: ['route'] as const,
      registers: [registry],
    }),
    throttled: new Counter({
      name: 'enrolld_http_token_throttled_total',
      help: 'Requests refused with 429 because their source address failed too many token attempts, by route',
      labelNames: ['route'] as const,
      registers: [registry],
    }),
  };
}

/** `enrolld up` on its embedded Postgres: restarts after the server died, by outcome (restarted, failed). */
export function createEmbeddedPostgresMetrics(registry: Registry) {
  return {
    restarts: new Counter({
      name: 'enrolld_embedded_postgres_restarts_total',
      help: 'Restarts of the embedded Postgres after it died, by outcome (restarted, failed)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
  };
}

/** 1 when a `SELECT 1` on the process's pool answers, 0 when it does not (within DB_CHECKOUT_TIMEOUT + DB_QUERY_TIMEOUT), probed at each scrape. */
export function createDatabaseUpGauge(registry: Registry, probe: () => Promise<void>): void {
  new Gauge({
    name: 'enrolld_database_up',
    help: 'Whether the database answered a probe at this scrape (1) or not (0); requests that need it get 503 + Retry-After while 0',
    registers: [registry],
    async collect() {
      this.set(await probe().then(
        () => 1,
        () => 0,
      ));
    },
  });
}

/**
 * The live fleet events a process relays to the other processes (core/src/fleet/cluster-events.ts): each published
 * event by where it ended, and each failed send. Registered once per registry (one relay per process).
 */
export function createFleetEventRelayMetrics(registry: Registry) {
  const existing = registry.getSingleMetric('enrolld_fleet_events_total') as Counter<'outcome'> | undefined;
  const events =
    existing ??
    new Counter({
      name: 'enrolld_fleet_events_total',
      help: 'Live fleet events this process published, by where they ended: sent, coalesced (into an earlier one\'s count), over-limit (dropped past 400 per send), send-failed (dropped with a failed send)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
  const sendFailures =
    (registry.getSingleMetric('enrolld_fleet_event_send_failures_total') as Counter | undefined) ??
    new Counter({
      name: 'enrolld_fleet_event_send_failures_total',
      help: 'Sends of live fleet events to the other processes (one NOTIFY statement each) that failed; their events are dropped, not retried',
      registers: [registry],
    });
  // Present from the start, so a rate() sees the first increment.
  for (const outcome of ['sent', 'coalesced', 'over-limit', 'send-failed']) events.inc({ outcome }, 0);
  return { events, sendFailures };
}
