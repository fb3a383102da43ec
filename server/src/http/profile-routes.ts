// Profiles and service identities over the admin API (docs/architecture.md §5): list, show, create, update and
// delete profiles; create a service and sign its CSR.
import express, { Router } from 'express';
import { createServiceRequestSchema, profileNameSchema, profileSpecSchema, routes } from '@enrolld/protocol';
import type { EnrollResponse, Profile, ProfileListResponse } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';
import type { ProfileService } from '@enrolld/core/profiles/profile-service.js';
import type { ServiceIdentities } from '@enrolld/core/profiles/service-identities.js';
import { adminOf } from './admin-auth.js';
import { badRequest, nameParam, requireContentType } from './request-context.js';

export interface ProfileRoutesDeps {
  profiles: Pick<ProfileService, 'list' | 'get' | 'create' | 'update' | 'delete'>;
  services: ServiceIdentities;
}

const profileName = (value: unknown) => nameParam(profileNameSchema, value, 'profile');

/** Routes mounted behind requireAdmin. */
export function profileRoutes(deps: ProfileRoutesDeps): Router {
  const router = Router();
  const json = [requireContentType('application/json'), express.json({ limit: '64kb' })];

  router.get(routes.adminProfiles, async (_req, res) => {
    res.json({ profiles: await deps.profiles.list() } satisfies ProfileListResponse);
  });

  router.post(routes.adminProfiles, ...json, async (req, res) => {
    const spec = profileSpecSchema.safeParse(req.body);
    if (!spec.success) throw badRequest(spec.error);
    const profile = await deps.profiles.create(spec.data, adminOf(res.locals).actor);
    res.status(201).location(routes.adminProfile(profile.name)).json(profile satisfies Profile);
  });

  router.get(`${routes.adminProfiles}/:name`, async (req, res) => {
    res.json((await deps.profiles.get(profileName(req.params.name))) satisfies Profile);
  });

  router.put(`${routes.adminProfiles}/:name`, ...json, async (req, res) => {
    const name = profileName(req.params.name);
    const spec = profileSpecSchema.safeParse(req.body);
    if (!spec.success) throw badRequest(spec.error);
    if (spec.data.name !== name) throw new EnrollError('bad-request', `the body names profile "${spec.data.name}", the path "${name}"`);
    res.json((await deps.profiles.update(spec.data, adminOf(res.locals).actor)) satisfies Profile);
  });

  router.delete(`${routes.adminProfiles}/:name`, async (req, res) => {
    await deps.profiles.delete(profileName(req.params.name), adminOf(res.locals).actor);
    res.status(204).end();
  });

  router.post(routes.adminServices, ...json, async (req, res) => {
    const body = createServiceRequestSchema.safeParse(req.body);
    if (!body.success) throw badRequest(body.error);
    const issued = await deps.services.create(body.data, adminOf(res.locals).actor, { requestId: res.locals.requestId as string | undefined });
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json(issued satisfies EnrollResponse);
  });

  return router;
}
