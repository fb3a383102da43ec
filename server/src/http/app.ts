import express from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createFailedTokenMetrics } from '../metrics.js';
import { routes } from '@enrolld/protocol';
import type { AdminAuthenticator } from '@enrolld/core/admin-auth.js';
import type { AuditTrail } from '@enrolld/core/audit/ports.js';
import type { EnrollError } from '@enrolld/core/errors.js';
import type { EnvironmentService } from '@enrolld/core/environments/environment-service.js';
import type { PopLinkingPolicy } from '@enrolld/core/renewal/pop-linking.js';
import { requireAdmin } from './admin-auth.js';
import { adminRoutes, type AdminRoutesDeps } from './admin-routes.js';
import { adminsRoutes, type AdminsRoutesDeps } from './admins-routes.js';
import { auditRoutes, type AuditRoutesDeps } from './audit-routes.js';
import { bulkRevocationRoutes, type BulkRevocationRoutesDeps } from './bulk-revocation-routes.js';
import { consoleRoutes } from './console/console-routes.js';
import { createConsoleSessions } from './console/console-sessions.js';
import { fleetRoutes, type FleetRoutesDeps } from './fleet-routes.js';
import { enrollRoutes, type EnrollRoutesDeps } from './enroll-routes.js';
import { environmentRoutes, knownEnvironmentQuery, type EnvironmentRoutesDeps } from './environment-routes.js';
import { estRoutes, type EstRoutesDeps } from './est/est-routes.js';
import { createFailedTokenLimiter, limitFailedTokenAttempts } from './failed-token-limit.js';
import { notFound, problemHandler } from './problem.js';
import { readinessAnswer } from './readiness.js';
import { renewRoutes, type RenewRoutesDeps } from './renew-routes.js';
import { requestContext } from './request-context.js';
import { crlRoutes, revocationAdminRoutes, type RevocationRoutesDeps } from './revocation-routes.js';
import { profileRoutes, type ProfileRoutesDeps } from './profile-routes.js';

/** The use cases the API serves; the composition passes what buildUseCases() made. */
export interface HttpUseCases {
  enrollment: EnrollRoutesDeps['enrollment'];
  estEnrollment: EstRoutesDeps['enrollment'];
  renewal: RenewRoutesDeps['renewal'] & EstRoutesDeps['renewal'];
  revocation: RevocationRoutesDeps['revocation'];
  tokens: AdminRoutesDeps['tokens'];
  devices: AdminRoutesDeps['devices'];
  authenticateAdmin: Pick<AdminAuthenticator, 'bearer' | 'certificate' | 'bearerEnabled'>;
  admins: AdminsRoutesDeps['admins'];
  profiles: ProfileRoutesDeps['profiles'];
  services: ProfileRoutesDeps['services'];
  bulkRevocation: BulkRevocationRoutesDeps['bulkRevocation'];
  fleet: FleetRoutesDeps['fleet'];
  fleetEvents: FleetRoutesDeps['events'];
  presence: FleetRoutesDeps['presence'];
  connectedSeries: { read: FleetRoutesDeps['connectedSeries'] };
  audit: AuditRoutesDeps['audit'] & Pick<AuditTrail, 'append'>;
  environments: EnvironmentRoutesDeps['environments'] & EnrollRoutesDeps['environments'] & EstRoutesDeps['environments'] & Pick<EnvironmentService, 'require' | 'published'>;
}

export interface HttpAppDeps {
  logger: Logger;
  registry: Registry;
  useCases: HttpUseCases;
  /** RFC 7030 §3.5 linking policy for EST. */
  popLinking: PopLinkingPolicy;
  /** Each thing the service needs to do its job (database, revocation state, cluster bus): true when it is there. */
  checkReadiness: () => Promise<Record<string, boolean>>;
  /** Members /readyz adds that inform an operator without deciding readiness. */
  readinessNotes?: () => Promise<Record<string, unknown>>;
  classifyError?: (error: unknown) => EnrollError | undefined;
  /** Idle lifetime of a console sign-in (CONSOLE_SESSION_TTL). */
  consoleSessionTtlMs: number;
  /** Proxies whose X-Forwarded-For names the client (IPs, CIDRs, or loopback/linklocal/uniquelocal); none by default. */
  trustedProxies?: readonly string[];
  /** Failed token attempts a source address may make per window before it gets 429; limit 0 turns it off. */
  failedTokenLimit?: { limit: number; windowMs: number };
}

/** The whole HTTP surface: public enrollment, renewal, EST and CRL routes, then the admin routes behind the guard. */
export function createHttpApp(deps: HttpAppDeps): express.Express {
  const { useCases } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // req.ip is the socket's peer unless that peer is a configured proxy; then X-Forwarded-For names the client.
  app.set('trust proxy', deps.trustedProxies?.length ? [...deps.trustedProxies] : false);
  app.use(requestContext(deps.logger));

  // Alive: the process answers. Restart it when this fails, never because a dependency is down.
  app.get(routes.healthz, (_req, res) => {
    res.json({ status: 'alive' });
  });
  // Ready: send traffic here. A 503 problem names what is missing, so a load balancer drains this replica until it is back.
  app.get(routes.readyz, async (_req, res) => {
    const [checks, notes] = await Promise.all([deps.checkReadiness(), deps.readinessNotes?.() ?? {}]);
    const answer = readinessAnswer(checks, 'serve', notes);
    res.status(answer.status).type(answer.contentType).send(JSON.stringify(answer.body));
  });
  app.get(routes.metrics, async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  const failedTokens = createFailedTokenLimiter(deps.failedTokenLimit ?? { limit: 0, windowMs: 60_000 });
  const failedTokenMetrics = createFailedTokenMetrics(deps.registry);
  // The enrollment token is in the body (a request without one is a 400, never a 401); the others are in Authorization.
  const hasAuthorization = (req: express.Request) => req.get('authorization') !== undefined;
  app.use(routes.enroll, limitFailedTokenAttempts(failedTokens, failedTokenMetrics, 'enroll', () => true));
  app.use([routes.est.simpleenroll, '/.well-known/est/:label/simpleenroll'], limitFailedTokenAttempts(failedTokens, failedTokenMetrics, 'est', hasAuthorization));
  app.use('/v1/admin', limitFailedTokenAttempts(failedTokens, failedTokenMetrics, 'admin', hasAuthorization));

  app.use(enrollRoutes({ enrollment: useCases.enrollment, environments: useCases.environments }));
  app.use(crlRoutes({ revocation: useCases.revocation, environments: useCases.environments }));
  app.use(renewRoutes({ renewal: useCases.renewal }));
  app.use(estRoutes({ renewal: useCases.renewal, enrollment: useCases.estEnrollment, environments: useCases.environments, popLinking: deps.popLinking, logger: deps.logger }));

  const consoleSessions = createConsoleSessions(deps.consoleSessionTtlMs);
  app.use(consoleRoutes({ sessions: consoleSessions, authenticateAdmin: useCases.authenticateAdmin, audit: useCases.audit, sessionTtlMs: deps.consoleSessionTtlMs }));

  app.use('/v1/admin', requireAdmin(useCases.authenticateAdmin, consoleSessions));
  app.use('/v1/admin', knownEnvironmentQuery(useCases.environments));
  app.use(adminRoutes({ tokens: useCases.tokens, devices: useCases.devices }));
  app.use(revocationAdminRoutes({ revocation: useCases.revocation }));
  app.use(profileRoutes({ profiles: useCases.profiles, services: useCases.services }));
  app.use(auditRoutes({ audit: useCases.audit }));
  app.use(bulkRevocationRoutes({ bulkRevocation: useCases.bulkRevocation, environments: useCases.environments }));
  app.use(fleetRoutes({
    fleet: useCases.fleet, devices: useCases.devices, audit: useCases.audit, events: useCases.fleetEvents, presence: useCases.presence, connectedSeries: () => useCases.connectedSeries.read(),
  }));
  app.use(adminsRoutes({ admins: useCases.admins }));
  app.use(environmentRoutes({ environments: useCases.environments }));

  app.use(notFound);
  app.use(problemHandler({ logger: deps.logger, classifyError: deps.classifyError }));
  return app;
}
