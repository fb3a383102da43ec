import express, { Router } from 'express';
import { CREATED_TOKEN_CSV_COLUMNS, createTokenRequestSchema, deviceIdSchema, deviceListQuerySchema, routes } from '@enrolld/protocol';
import type { CreateTokensResponse, DeviceDetail, DeviceListResponse, DeviceTokensResponse } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';
import type { DeviceStore } from '@enrolld/core/ports.js';
import type { createTokenIssuer } from '@enrolld/core/tokens.js';
import { adminOf } from './admin-auth.js';
import { badRequest, requireContentType } from './request-context.js';

export interface AdminRoutesDeps {
  tokens: ReturnType<typeof createTokenIssuer>;
  devices: DeviceStore;
}

function csvCell(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Routes mounted behind requireAdmin. */
export function adminRoutes(deps: AdminRoutesDeps): Router {
  const router = Router();

  // A batch of 100k tokens is a small body; the response (CSV or JSON) is what grows.
  router.post(routes.adminTokens, requireContentType('application/json'), express.json({ limit: '16kb' }), async (req, res) => {
    const body = createTokenRequestSchema.safeParse(req.body);
    if (!body.success) throw badRequest(body.error);
    const created = await deps.tokens.create(body.data, adminOf(res.locals).actor);
    res.setHeader('Cache-Control', 'no-store');
    if (req.accepts(['application/json', 'text/csv']) === 'text/csv') {
      const lines = [CREATED_TOKEN_CSV_COLUMNS.join(','), ...created.map((t) => CREATED_TOKEN_CSV_COLUMNS.map((column) => csvCell(t[column])).join(','))];
      res.status(201).type('text/csv').send(lines.join('\n') + '\n');
      return;
    }
    res.status(201).json(created satisfies CreateTokensResponse);
  });

  router.get(routes.adminDevices, async (req, res) => {
    const query = deviceListQuerySchema.safeParse(req.query);
    if (!query.success) throw badRequest(query.error);
    const devices = await deps.devices.list(query.data);
    const last = devices.at(-1);
    const page: DeviceListResponse = { devices, next: devices.length === query.data.limit && last ? last.id : null };
    res.json(page);
  });

  router.get(`${routes.adminDevices}/:id`, async (req, res) => {
    const id = deviceIdSchema.safeParse(req.params.id);
    if (!id.success) throw new EnrollError('bad-request', `"${req.params.id}" is not a valid device id`);
    const device = await deps.devices.get(id.data);
    if (!device) throw new EnrollError('not-found', `no device ${id.data}`);
    res.json(device satisfies DeviceDetail);
  });

  router.get(`${routes.adminDevices}/:id/tokens`, async (req, res) => {
    const id = deviceIdSchema.safeParse(req.params.id);
    if (!id.success) throw new EnrollError('bad-request', `"${req.params.id}" is not a valid device id`);
    const tokens = await deps.tokens.history(id.data);
    if (!tokens) throw new EnrollError('not-found', `no device ${id.data}`);
    res.json({ deviceId: id.data, tokens } satisfies DeviceTokensResponse);
  });

  return router;
}
