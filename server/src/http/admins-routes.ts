// Admins over the admin API (docs/architecture.md §9c): who am I, list, create (record + certificate from the caller's
// CSR), change a role, revoke. The role each route needs is in adminRouteRoles (protocol/src/routes.ts).
import express, { Router } from 'express';
import { adminNameSchema, createAdminRequestSchema, routes, setAdminRoleRequestSchema } from '@enrolld/protocol';
import type { AdminListResponse, CreateAdminResponse, RevokeResponse, WhoamiResponse } from '@enrolld/protocol';
import type { AdminService } from '@enrolld/core/admins/admin-service.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { adminOf } from './admin-auth.js';
import { badRequest, nameParam, requireContentType } from './request-context.js';
import { optionalJsonBody, parseReason } from './revocation-routes.js';

export interface AdminsRoutesDeps {
  admins: Pick<AdminService, 'create' | 'list' | 'setRole' | 'revoke'>;
}

const adminName = (value: unknown) => nameParam(adminNameSchema, value, 'admin');

/** Routes mounted behind requireAdmin. */
export function adminsRoutes(deps: AdminsRoutesDeps): Router {
  const router = Router();
  const json = [requireContentType('application/json'), express.json({ limit: '16kb' })];

  router.get(routes.adminWhoami, (_req, res) => {
    const { actor, role, credential } = adminOf(res.locals);
    res.json({ actor, role, credential } satisfies WhoamiResponse);
  });

  router.get(routes.adminAdmins, async (_req, res) => {
    const admins = await deps.admins.list();
    res.json({
      admins: admins.map((a) => ({
        ...a,
        createdAt: a.createdAt.toISOString(),
        updatedAt: a.updatedAt.toISOString(),
        notAfter: a.notAfter?.toISOString() ?? null,
      })),
    } satisfies AdminListResponse);
  });

  router.post(routes.adminAdmins, ...json, async (req, res) => {
    const body = createAdminRequestSchema.safeParse(req.body);
    if (!body.success) throw badRequest(body.error);
    const created = await deps.admins.create(body.data, adminOf(res.locals).actor, { requestId: res.locals.requestId as string | undefined });
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json(created satisfies CreateAdminResponse);
  });

  router.put(`${routes.adminAdmins}/:name/role`, ...json, async (req, res) => {
    const name = adminName(req.params.name);
    const body = setAdminRoleRequestSchema.safeParse(req.body);
    if (!body.success) throw badRequest(body.error);
    await deps.admins.setRole(name, body.data.role, adminOf(res.locals).actor);
    res.status(204).end();
  });

  router.post(`${routes.adminAdmins}/:name/revoke`, optionalJsonBody, express.json({ limit: '4kb' }), async (req, res) => {
    const name = adminName(req.params.name);
    const result = await deps.admins.revoke(name, parseReason(req.body), adminOf(res.locals).actor, { requestId: res.locals.requestId as string | undefined });
    res.json(result satisfies RevokeResponse);
  });

  return router;
}
