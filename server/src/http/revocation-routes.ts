// Revocation over HTTP (docs/architecture.md): the admin revoke endpoints and the public CRL (RFC 5280 §5).
import express, { Router, type Request, type RequestHandler } from 'express';
import { canonicalSerial, describeIssues, deviceIdSchema, revokeRequestSchema, routes, type RevokeResponse } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';
import type { EnvironmentService } from '@enrolld/core/environments/environment-service.js';
import type { RevocationService, RevokeResult } from '@enrolld/core/revocation/revocation-service.js';
import { adminOf } from './admin-auth.js';
import { environmentQuery } from './environment-routes.js';

export interface RevocationRoutesDeps {
  revocation: Pick<RevocationService, 'revokeDevice' | 'revokeCertificate' | 'currentCrl'>;
}

export interface CrlRoutesDeps extends RevocationRoutesDeps {
  environments: Pick<EnvironmentService, 'published'>;
}

/** The body is optional (reason defaults to `unspecified`); when there is one it must be JSON. */
export const optionalJsonBody: RequestHandler = (req, _res, next) => {
  const length = Number(req.get('content-length') ?? 0);
  const hasBody = length > 0 || req.get('transfer-encoding') !== undefined;
  if (hasBody && !req.is('application/json')) {
    next(new EnrollError('unsupported-media-type', `Content-Type must be application/json, not ${req.get('content-type') ?? 'none'}`));
    return;
  }
  next();
};

export function parseReason(body: unknown): { reason: string; comment?: string | undefined } {
  const parsed = revokeRequestSchema.safeParse(body ?? {});
  if (!parsed.success) {
    throw new EnrollError('bad-request', describeIssues(parsed.error));
  }
  return parsed.data;
}

function answer(result: RevokeResult): RevokeResponse {
  return {
    deviceId: result.deviceId,
    // "already-revoked" is a no-op, not an error (an idempotent admin command): 200 either way, told apart by `outcome`.
    outcome: result.outcome,
    reason: result.reason,
    serials: result.serials,
  };
}

/** Mounted behind requireAdmin (the app puts the guard on /v1/admin). */
export function revocationAdminRoutes(deps: RevocationRoutesDeps): Router {
  const router = Router();
  const json = express.json({ limit: '4kb' }); // a reason and a comment of at most 500 characters

  router.post('/v1/admin/devices/:id/revoke', optionalJsonBody, json, async (req, res) => {
    const id = deviceIdSchema.safeParse(req.params.id);
    if (!id.success) throw new EnrollError('bad-request', `"${String(req.params.id)}" is not a valid device id`);
    const { reason, comment } = parseReason(req.body);
    const result = await deps.revocation.revokeDevice(id.data, {
      reason,
      comment,
      actor: adminOf(res.locals).actor,
      requestId: res.locals.requestId as string | undefined,
    });
    res.status(200).json(answer(result));
  });

  router.post('/v1/admin/certificates/:serial/revoke', optionalJsonBody, json, async (req, res) => {
    const { reason, comment } = parseReason(req.body);
    // The edge: the admin may paste the serial as any X.509 tool prints it; from here on it is canonical.
    const serial = canonicalSerial(String(req.params.serial));
    if (serial === undefined) throw new EnrollError('bad-request', 'serial must be hexadecimal, at most 20 octets (RFC 5280 §4.1.2.2)');
    const result = await deps.revocation.revokeCertificate(serial, {
      reason,
      comment,
      actor: adminOf(res.locals).actor,
      requestId: res.locals.requestId as string | undefined,
    });
    res.status(200).json(answer(result));
  });

  return router;
}

/** RFC 9110 §13.1.2 (weak comparison, so a W/ prefix still matches) and §13.1.3 (ignored when If-None-Match is present). */
function notModified(req: Request, etag: string, lastModified: Date): boolean {
  const noneMatch = req.get('if-none-match');
  if (noneMatch !== undefined) {
    return noneMatch.split(',').some((tag) => {
      const t = tag.trim();
      return t === '*' || t.replace(/^W\//, '') === etag;
    });
  }
  const since = Date.parse(req.get('if-modified-since') ?? '');
  return !Number.isNaN(since) && lastModified.getTime() <= since;
}

/**
 * Public: anyone may fetch the CRL (RFC 5280 §5; served as application/pkix-crl, RFC 2585 §4.2) of one environment's
 * issuing CA (`?env=`, default `default`; a deleted environment's too, while relying parties may still need it). The
 * CRL number names one signed CRL, so it is a strong validator. A relying party may use a CRL until its nextUpdate, so
 * a cache may keep it that long (RFC 9111 §5.2.2.1); newer revocations are enforced by the brokers from the registry,
 * not from this copy.
 */
export function crlRoutes(deps: CrlRoutesDeps): Router {
  const router = Router();
  router.get(routes.crl, async (req, res) => {
    const environment = await deps.environments.published(environmentQuery(req.query));
    const crl = await deps.revocation.currentCrl(environment.name);
    const etag = `"${crl.crlNumber.toString()}"`;
    const maxAgeSeconds = Math.max(0, Math.floor((crl.nextUpdate.getTime() - Date.now()) / 1000));
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', crl.thisUpdate.toUTCString());
    res.setHeader('Cache-Control', `public, max-age=${maxAgeSeconds}`);
    if (notModified(req, etag, crl.thisUpdate)) {
      res.status(304).end();
      return;
    }
    res.type('application/pkix-crl').send(crl.der);
  });
  return router;
}
