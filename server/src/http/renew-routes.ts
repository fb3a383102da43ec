// POST /v1/renew (docs/architecture.md): renewal over REST, authenticated by the current certificate on this TLS connection.
// The listener asks for a client certificate without requiring one (https-server.ts); this route requires it, and the
// renewal core checks it against the CA and the store rather than trusting `socket.authorized`.
import type { TLSSocket } from 'node:tls';
import express, { Router, type Request } from 'express';
import { MAX_ENROLL_BODY_BYTES, renewRequestSchema, routes, type RenewResponse } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';
import type { Renewal } from '@enrolld/core/renewal/renewal.js';
import { requireContentType } from './request-context.js';

export interface RenewRoutesDeps {
  renewal: Pick<Renewal, 'renew'>;
}

/** The DER of the client certificate on this request's TLS connection, if the client sent one. */
export function peerCertificateDer(req: Request): Buffer | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const raw = socket.getPeerCertificate(false)?.raw;
  return raw && raw.length > 0 ? raw : undefined;
}

export function renewRoutes(deps: RenewRoutesDeps): Router {
  const router = Router();
  router.post(
    routes.renew,
    requireContentType('application/json'),
    express.json({ limit: MAX_ENROLL_BODY_BYTES, strict: true }),
    async (req, res) => {
      const body = renewRequestSchema.safeParse(req.body);
      if (!body.success) {
        throw new EnrollError('bad-request', `body must be {"csr": PEM string}: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'} ${i.message}`).join('; ')}`);
      }
      const result = await deps.renewal.renew(
        { credential: { kind: 'certificate', der: peerCertificateDer(req) }, csr: body.data.csr, transport: 'rest' },
        { requestId: res.locals.requestId as string },
      );
      res.locals.deviceId = result.response.deviceId;
      if (result.replayed) res.setHeader('Enrolld-Replayed', 'true');
      res.status(201).json(result.response satisfies RenewResponse);
    },
  );
  return router;
}
