import express, { type Router } from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { routes } from '@enrolld/protocol';
import type { AdminPrincipal } from '@enrolld/core/admin-auth.js';
import type { Enrollment } from '@enrolld/core/enroll.js';
import type { EnrollError } from '@enrolld/core/errors.js';
import type { DeviceStore } from '@enrolld/core/ports.js';
import type { createTokenIssuer } from '@enrolld/core/tokens.js';
import { requireAdmin } from './admin-auth.js';
import { adminRoutes } from './admin-routes.js';
import { enrollRoutes } from './enroll-routes.js';
import { notFound, problemHandler } from './problem.js';
import { requestContext } from './request-context.js';

export interface HttpAppDeps {
  logger: Logger;
  registry: Registry;
  enrollment: Enrollment;
  chainPem: string;
  tokens: ReturnType<typeof createTokenIssuer>;
  devices: DeviceStore;
  authenticateAdmin: (bearer: string | undefined) => Promise<AdminPrincipal>;
  /** Resolves when the service can do its job (database reachable); rejects otherwise. */
  checkHealth: () => Promise<void>;
  classifyError?: (error: unknown) => EnrollError | undefined;
  /** Further public routers (e.g. CRL, EST, renewal) and admin routers (behind the admin guard). */
  publicRouters?: Router[];
  adminRouters?: Router[];
}

export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(deps.logger));

  app.get(routes.healthz, async (_req, res) => {
    try {
      await deps.checkHealth();
      res.json({ status: 'ok' });
    } catch {
      res.status(503).json({ status: 'unavailable' });
    }
  });
  app.get(routes.metrics, async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  app.use(enrollRoutes({ enrollment: deps.enrollment, chainPem: deps.chainPem }));
  for (const router of deps.publicRouters ?? []) app.use(router);

  const guard = requireAdmin(deps.authenticateAdmin);
  app.use('/v1/admin', guard);
  app.use(adminRoutes({ tokens: deps.tokens, devices: deps.devices }));
  for (const router of deps.adminRouters ?? []) app.use(router);

  app.use(notFound);
  app.use(problemHandler({ logger: deps.logger, classifyError: deps.classifyError }));
  return app;
}
