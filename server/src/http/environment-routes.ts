// Environments over the admin API (docs/architecture.md §5): list, show, create (an issuing CA of its own, under the
// shared root or its own root) and delete one that nothing live belongs to any more.
import { X509Certificate } from 'node:crypto';
import express, { Router, type RequestHandler } from 'express';
import { createEnvironmentRequestSchema, environmentNameSchema, environmentQuerySchema, routes } from '@enrolld/protocol';
import type { EnvironmentBody, EnvironmentListResponse } from '@enrolld/protocol';
import { chainOf, type EnvironmentService } from '@enrolld/core/environments/environment-service.js';
import type { EnvironmentRecord } from '@enrolld/core/environments/ports.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { adminOf } from './admin-auth.js';
import { badRequest, nameParam, requireContentType } from './request-context.js';

export interface EnvironmentRoutesDeps {
  environments: Pick<EnvironmentService, 'list' | 'get' | 'create' | 'delete'>;
}

/** SHA-256 fingerprint as hex, the form `openssl x509 -fingerprint -sha256` prints without its colons. */
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256.replaceAll(':', '').toLowerCase();

export function environmentBody(environment: EnvironmentRecord): EnvironmentBody {
  return {
    name: environment.name,
    ownRoot: environment.ownRoot,
    chain: chainOf(environment),
    issuingFingerprint: fingerprint(environment.issuingCertificatePem),
    rootFingerprint: fingerprint(environment.rootCertificatePem),
    createdAt: environment.createdAt.toISOString(),
    createdBy: environment.createdBy,
  };
}

const environmentName = (value: unknown) => nameParam(environmentNameSchema, value, 'environment');

/** The environment a public route's `?env=` names (`default` when absent); 400 for a name the identity rule refuses. */
export function environmentQuery(query: unknown): string {
  const parsed = environmentQuerySchema.safeParse(query);
  if (!parsed.success) throw new EnrollError('bad-request', `env: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return parsed.data.env;
}

/**
 * Every admin route that takes `?env=` (lists, searches, profiles) gets a name that exists: 400 naming the existing
 * ones otherwise, checked once here instead of in each route.
 */
export function knownEnvironmentQuery(environments: Pick<EnvironmentService, 'require'>): RequestHandler {
  return (req, _res, next) => {
    if (req.query.env === undefined) return next();
    Promise.resolve()
      .then(() => environments.require(environmentQuery(req.query)))
      .then(() => next(), next);
  };
}

/** Mounted behind requireAdmin. */
export function environmentRoutes(deps: EnvironmentRoutesDeps): Router {
  const router = Router();

  router.get(routes.adminEnvironments, async (_req, res) => {
    res.json({ environments: (await deps.environments.list()).map(environmentBody) } satisfies EnvironmentListResponse);
  });

  router.post(routes.adminEnvironments, requireContentType('application/json'), express.json({ limit: '4kb' }), async (req, res) => {
    const body = createEnvironmentRequestSchema.safeParse(req.body);
    if (!body.success) throw badRequest(body.error);
    const created = await deps.environments.create(
      { name: body.data.name, ownRoot: body.data.ownRoot ?? false },
      { actor: adminOf(res.locals).actor, requestId: res.locals.requestId as string | undefined },
    );
    res.status(201).location(routes.adminEnvironment(created.name)).json(environmentBody(created) satisfies EnvironmentBody);
  });

  router.get(`${routes.adminEnvironments}/:name`, async (req, res) => {
    res.json(environmentBody(await deps.environments.get(environmentName(req.params.name))) satisfies EnvironmentBody);
  });

  router.delete(`${routes.adminEnvironments}/:name`, async (req, res) => {
    await deps.environments.delete(environmentName(req.params.name), { actor: adminOf(res.locals).actor, requestId: res.locals.requestId as string | undefined });
    res.status(204).end();
  });

  return router;
}
