import express, { Router } from 'express';
import { enrollRequestSchema, MAX_ENROLL_BODY_BYTES, routes, type EnrollResponse } from '@enrolld/protocol';
import type { Enrollment } from '@enrolld/core/enroll.js';
import type { EnvironmentService } from '@enrolld/core/environments/environment-service.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { environmentQuery } from './environment-routes.js';
import { requireContentType } from './request-context.js';

export interface EnrollRoutesDeps {
  enrollment: Enrollment;
  environments: Pick<EnvironmentService, 'chain'>;
}

export function enrollRoutes(deps: EnrollRoutesDeps): Router {
  const router = Router();

  router.post(
    routes.enroll,
    requireContentType('application/json'),
    // The cap is checked against Content-Length before any byte is parsed (413), and enforced while streaming.
    express.json({ limit: MAX_ENROLL_BODY_BYTES, strict: true }),
    async (req, res) => {
      const body = enrollRequestSchema.safeParse(req.body);
      if (!body.success) {
        throw new EnrollError('bad-request', `body must be {"token": string, "csr": PEM string}: ${body.error.issues.map((i) => `${i.path.join('.') || 'body'} ${i.message}`).join('; ')}`);
      }
      const { response, replayed } = await deps.enrollment.enroll(body.data, { requestId: res.locals.requestId as string });
      res.locals.deviceId = response.deviceId;
      res.locals.serial = response.serial;
      if (replayed) res.setHeader('Enrolld-Replayed', 'true');
      res.status(201).json(response satisfies EnrollResponse);
    },
  );

  // The chain of one environment (`?env=`, default `default`): what its devices trust and send with their certificate.
  router.get(routes.ca, async (req, res) => {
    res.type('application/pem-certificate-chain').send(await deps.environments.chain(environmentQuery(req.query)));
  });

  return router;
}
