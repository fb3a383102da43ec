// Bulk revocation over HTTP (docs/architecture.md §7a): a dry run answers the count and a sample; otherwise a job is
// recorded with its frozen targets and queued, and its progress is read back by id.
import express, { Router } from 'express';
import { bulkRevocationRequestSchema, describeIssues, routes, type BulkDryRunResponse, type BulkRevocationJobBody } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';
import type { EnvironmentService } from '@enrolld/core/environments/environment-service.js';
import type { BulkRevocation } from '@enrolld/core/revocation/bulk-revocation.js';
import type { BulkRevocationJob } from '@enrolld/core/revocation/ports.js';
import { adminOf } from './admin-auth.js';
import { requireContentType } from './request-context.js';

export interface BulkRevocationRoutesDeps {
  bulkRevocation: Pick<BulkRevocation, 'dryRun' | 'start' | 'get' | 'list'>;
  /** A selector's environment must exist (400 otherwise). */
  environments: Pick<EnvironmentService, 'require'>;
}

export const bulkJobBody = (job: BulkRevocationJob): BulkRevocationJobBody => ({
  ...job,
  selector: { ...job.selector },
  createdAt: job.createdAt.toISOString(),
  finishedAt: job.finishedAt?.toISOString() ?? null,
});

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Mounted behind requireAdmin. A list of 100,000 serials is about 4 MB of JSON. */
export function bulkRevocationRoutes(deps: BulkRevocationRoutesDeps): Router {
  const router = Router();

  router.post(routes.adminBulkRevocations, requireContentType('application/json'), express.json({ limit: '5mb' }), async (req, res) => {
    const body = bulkRevocationRequestSchema.safeParse(req.body);
    if (!body.success) throw new EnrollError('bad-request', describeIssues(body.error));
    const { selector, reason, dryRun } = body.data;
    if (selector.environment !== undefined) await deps.environments.require(selector.environment);
    if (dryRun) {
      const preview = await deps.bulkRevocation.dryRun(selector);
      res.json({ dryRun: true, count: preview.count, sample: preview.sample.map(({ deviceId, serial }) => ({ deviceId, serial })) } satisfies BulkDryRunResponse);
      return;
    }
    const job = await deps.bulkRevocation.start({ selector, reason, actor: adminOf(res.locals).actor, requestId: res.locals.requestId as string | undefined });
    res.status(202).location(routes.adminBulkRevocation(job.id)).json(bulkJobBody(job));
  });

  router.get(routes.adminBulkRevocations, async (_req, res) => {
    res.json({ jobs: (await deps.bulkRevocation.list(50)).map(bulkJobBody) });
  });

  router.get(`${routes.adminBulkRevocations}/:id`, async (req, res) => {
    const id = String(req.params.id);
    if (!JOB_ID.test(id)) throw new EnrollError('bad-request', 'a bulk revocation id is a UUID');
    const job = await deps.bulkRevocation.get(id);
    if (!job) throw new EnrollError('not-found', `no bulk revocation ${id}`);
    res.setHeader('Cache-Control', 'no-store');
    res.json(bulkJobBody(job));
  });

  return router;
}
