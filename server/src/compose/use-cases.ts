// The use cases every role shares, built once per process over one pool and the environments' issuing CAs. Roles take what they
// serve: the API all of them, the worker revocation + lineage + sweep, the broker in `enrolld up` renewal + lineage
// (renewal over MQTT, supersede on first connect). See docs/architecture.md, "Composition".
import type { Logger } from 'pino';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import {
  createPgAdminCredentialStore, createPgAdminStore, createPgPresenceStore, createPgAuditStore, createPgBulkRevocationStore, createPgEnvironmentStore, createPgFleetStore, createPgDeviceStore,
  createPgEnrollmentStore, createPgProfileStore, createPgRenewalStore, createPgRevocationStore, createPgTokenStore,
} from '@enrolld/db';
import { createAdminAuthenticator } from '@enrolld/core/admin-auth.js';
import { createAdminService } from '@enrolld/core/admins/admin-service.js';
import type { IssuancePublisher } from '@enrolld/core/admission/ports.js';
import type { IssuingCa } from '@enrolld/core/ca/types.js';
import { systemClock, type Clock } from '@enrolld/core/clock.js';
import { createEnrollment } from '@enrolld/core/enroll.js';
import { createEnvironmentService } from '@enrolld/core/environments/environment-service.js';
import type { EnvironmentCaFactory, IssuingCas } from '@enrolld/core/environments/ports.js';
import { createEstEnrollment } from '@enrolld/core/renewal/est-enrollment.js';
import { createLineage } from '@enrolld/core/renewal/lineage.js';
import { createRenewal } from '@enrolld/core/renewal/renewal.js';
import { createRotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import type { RevocationPublisher } from '@enrolld/core/revocation/ports.js';
import { createRevocationService } from '@enrolld/core/revocation/revocation-service.js';
import { createTokenIssuer } from '@enrolld/core/tokens.js';
import { createProfileService } from '@enrolld/core/profiles/profile-service.js';
import { createServiceIdentities } from '@enrolld/core/profiles/service-identities.js';
import { createJobRequestRelay } from '@enrolld/core/events/job-request-relay.js';
import { createBulkRevocation } from '@enrolld/core/revocation/bulk-revocation.js';
import { createFleetEvents } from '@enrolld/core/fleet/live-events.js';
import { createConnectedSeries } from '@enrolld/core/fleet/presence.js';
import { REVOCATION_REASON_NAMES, REVOCATION_REASONS } from '@enrolld/protocol';
import type { Config } from '../config.js';
import { createUseCaseMetrics } from '../metrics.js';

/** A signature in flight for this long is taken as abandoned, and a retry may complete it. */
const IN_FLIGHT_SECONDS = 10;
/** How long an EST or REST retry waits for a request that is still signing the same CSR before answering 202. */
const WAIT_FOR_IN_FLIGHT_MS = 3000;
/** A sweep reads due certificates in pages of this size. */
const SWEEP_BATCH_SIZE = 1000;
/** Jitter is at most this share of the time a certificate has left, so a short-lived certificate is hinted in time. */
const JITTER_SHARE_OF_REMAINING = 0.25;

export interface UseCaseDeps {
  config: Readonly<Config>;
  pool: pg.Pool;
  /** Revocation's own pool (compose/database.ts). */
  revocationPool: pg.Pool;
  /** Each environment's issuing CA (compose/pki-home.ts). */
  cas: IssuingCas;
  /** Makes a new environment's CA in this process's home (the API; other roles never create one). */
  caFactory: EnvironmentCaFactory;
  /** The issuing CA of `default` (the home's): its chain is served without a database round trip, and admins' certificates are its. */
  defaultCa: IssuingCa;
  logger: Logger;
  registry: Registry;
  /** Told after each revocation commits and after each CRL rebuild: the in-process source a broker in the same process consumes. */
  revocationEvents?: RevocationPublisher | undefined;
  /** Told after each signed certificate is stored (enrollment, renewal): the registry of a broker in the same process. */
  issuanceEvents?: IssuancePublisher | undefined;
  clock?: Clock;
}

/** The connected-devices chart: one point per 5 s over the last hour, kept in Postgres for every replica. */
const CONNECTED_SAMPLE_MS = 5000;
const CONNECTED_RETAIN_MS = 3_600_000;

export function buildUseCases(deps: UseCaseDeps) {
  const { config, pool, cas, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = createUseCaseMetrics(deps.registry);
  // Live events for the console; the broker hooks of `enrolld up` publish connections and refusals here.
  const fleetEvents = createFleetEvents();
  // Presence of every broker node (brokers write it, core/src/fleet/presence.ts); the chart samples its count.
  const presence = createPgPresenceStore(pool);
  const connectedSeries = createConnectedSeries({
    store: presence,
    sampleMs: CONNECTED_SAMPLE_MS,
    retainMs: CONNECTED_RETAIN_MS,
    onError: (error) => logger.debug({ err: error instanceof Error ? error.message : String(error) }, 'connected sample failed; the next one retries'),
  });
  const reasonName = (code: number) => REVOCATION_REASON_NAMES.find((n) => REVOCATION_REASONS[n] === code) ?? String(code);
  const renewalStore = createPgRenewalStore(pool);
  const deviceStore = createPgDeviceStore(pool);
  const adminCredentials = createPgAdminCredentialStore(pool);
  const adminStore = createPgAdminStore(pool);
  const profiles = createProfileService({ store: createPgProfileStore(pool) });
  const environments = createEnvironmentService({ store: createPgEnvironmentStore(pool), caFactory: deps.caFactory, defaultChainPem: deps.defaultCa.chainPem });
  const tokens = createTokenIssuer({ store: createPgTokenStore(pool), clock: deps.clock ?? systemClock, defaultTtlSeconds: config.tokenTtlSeconds, profiles, environments });

  const enrollment = createEnrollment({
    store: createPgEnrollmentStore(pool),
    cas,
    clock,
    policy: {
      certificateLifetimeSeconds: config.certificateLifetimeSeconds,
      backdateSeconds: config.backdateSeconds,
      renewalWindowFraction: config.rotation.renewalWindowFraction,
      retryWindowSeconds: config.enrollRetryWindowSeconds,
      inFlightSeconds: IN_FLIGHT_SECONDS,
    },
    onIssued: (event) => {
      deps.issuanceEvents?.issued(event);
      fleetEvents.publish({ type: 'enrolled', deviceId: event.deviceId, serial: event.serial, at: fleetEvents.now() });
    },
    onOutcome: (outcome, seconds) => {
      metrics.enrollments.inc({ outcome });
      metrics.enrollmentSeconds.observe({ outcome }, seconds);
    },
  });

  const revocation = createRevocationService({
    store: createPgRevocationStore(deps.revocationPool),
    // Each environment's CRL is signed by its own issuing CA (a deleted environment's too, while its revocations matter).
    signer: { signCrl: async (spec, environment) => (await cas.forCrl(environment)).signCrl(spec) },
    clock,
    crlValidityMs: config.revocation.crlValidityMs,
    crlMinIntervalMs: config.revocation.crlMinIntervalMs,
    publisher: {
      revoked(revoked, crl) {
        // Told before the in-process broker, whose cut of the session (and its `disconnected`) follows synchronously.
        for (const r of revoked) fleetEvents.publish({ type: 'revoked', deviceId: r.deviceId, serial: r.serial, reason: reasonName(r.reasonCode), at: fleetEvents.now() });
        deps.revocationEvents?.revoked(revoked, crl);
      },
    },
    onCrlRebuilt: () => metrics.crlRebuilds.inc({ outcome: 'stored' }),
    onCrlError: (error) => {
      metrics.crlRebuilds.inc({ outcome: 'failed' });
      logger.error({ err: error }, 'CRL rebuild failed; brokers still refuse the serial at CONNECT');
    },
  });

  // Bulk revocations are queued through this relay; the job runtime of the process (worker, or a producer) consumes it.
  const jobRequests = createJobRequestRelay();
  const bulkRevocation = createBulkRevocation({
    store: createPgBulkRevocationStore(pool),
    revoker: revocation,
    enqueue: (id) => jobRequests.request({ name: 'bulk-revoke', id }),
    batchSize: config.revocation.bulkBatchSize,
    onProgress: ({ revoked }) => metrics.bulkRevoked.inc(revoked.length),
  });

  const lineage = createLineage({
    store: renewalStore,
    revoker: revocation,
    clock,
    logger: logger.child({ component: 'rotation' }),
    graceSeconds: config.rotation.supersedeGraceSeconds,
    batchWindowMs: config.rotation.supersedeBatchWindowMs,
    onSuperseded: (trigger, _serial, sinceFirstConnectMs) => {
      metrics.superseded.inc({ trigger });
      if (sinceFirstConnectMs !== undefined) metrics.supersedeSeconds.observe(sinceFirstConnectMs / 1000);
    },
  });

  const renewal = createRenewal({
    store: renewalStore,
    cas,
    clock,
    policy: {
      certificateLifetimeSeconds: config.certificateLifetimeSeconds,
      backdateSeconds: config.backdateSeconds,
      renewalWindowFraction: config.rotation.renewalWindowFraction,
      inFlightSeconds: IN_FLIGHT_SECONDS,
      waitForInFlightMs: WAIT_FOR_IN_FLIGHT_MS,
      expired: config.rotation.expired,
      popLinking: config.rotation.estPopLinking,
    },
    onRenewed: (entry) => lineage.noteRenewal(entry),
    onIssued: (event) => {
      deps.issuanceEvents?.issued(event);
      fleetEvents.publish({ type: 'renewed', deviceId: event.deviceId, serial: event.serial, at: fleetEvents.now() });
    },
    onOutcome: (transport, outcome, seconds) => {
      metrics.renewals.inc({ transport, outcome });
      metrics.renewalSeconds.observe({ transport, outcome }, seconds);
    },
  });

  return {
    enrollment,
    estEnrollment: createEstEnrollment({ enrollment, tokens: renewalStore, popLinking: config.rotation.estPopLinking }),
    tokens,
    profiles,
    environments,
    services: createServiceIdentities({ tokens, enrollment }),
    devices: deviceStore,
    adminCredentials,
    authenticateAdmin: createAdminAuthenticator({
      credentials: adminCredentials, admins: adminStore, issuingCaDer: deps.defaultCa.certificateDer, clock, bearerEnabled: config.adminBearer,
    }),
    admins: createAdminService({ tokens, enrollment, store: adminStore, revocation, bearerEnabled: config.adminBearer }),
    audit: createPgAuditStore(pool),
    fleet: createPgFleetStore(pool),
    fleetEvents,
    presence,
    connectedSeries,
    revocation,
    bulkRevocation,
    jobRequests,
    lineage,
    renewal,
    sweep: createRotationSweep({
      store: renewalStore,
      policy: {
        windowFraction: config.rotation.renewalWindowFraction,
        jitterMaxMs: config.rotation.hintJitterSeconds * 1000,
        jitterShareOfRemaining: JITTER_SHARE_OF_REMAINING,
        batchSize: SWEEP_BATCH_SIZE,
      },
    }),
  };
}

export type UseCases = ReturnType<typeof buildUseCases>;
