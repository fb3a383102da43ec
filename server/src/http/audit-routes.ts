// The audit trail over HTTP (docs/architecture.md §9a): read with filters and keyset paging, and verify the hash chain.
import { Router } from 'express';
import { auditQuerySchema, describeIssues, routes, type AuditListResponse, type AuditVerificationBody } from '@enrolld/protocol';
import type { AuditEvent, AuditTrail } from '@enrolld/core/audit/ports.js';
import { EnrollError } from '@enrolld/core/errors.js';

export interface AuditRoutesDeps {
  audit: Pick<AuditTrail, 'list' | 'verify'>;
}

export const auditEventBody = (e: AuditEvent): AuditListResponse['events'][number] => ({ ...e, at: e.at.toISOString() });

/** Mounted behind requireAdmin. */
export function auditRoutes(deps: AuditRoutesDeps): Router {
  const router = Router();

  router.get(routes.adminAudit, async (req, res) => {
    const query = auditQuerySchema.safeParse(req.query);
    if (!query.success) throw new EnrollError('bad-request', describeIssues(query.error, 'query'));
    const events = await deps.audit.list(query.data);
    const last = events.at(-1);
    const page: AuditListResponse = { events: events.map(auditEventBody), next: events.length === query.data.limit && last && last.seq > 1 ? last.seq : null };
    res.json(page);
  });

  router.get(routes.adminAuditVerify, async (_req, res) => {
    const result = await deps.audit.verify();
    res.setHeader('Cache-Control', 'no-store');
    res.json(result satisfies AuditVerificationBody);
  });

  return router;
}
