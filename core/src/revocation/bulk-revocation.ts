// Bulk revocation (docs/architecture.md §7a): a selector is resolved once into a frozen target list, then a job revokes
// the targets in batches through the revoke use case's revokeCertificates, so live sessions are cut and the CRL rebuilt
// exactly as for single revocations (coalesced). The job is at-least-once (BullMQ): revokeCertificates skips what is
// already revoked and the store recounts progress from its rows, so a run repeated after a crash revokes nothing twice
// and skips nothing.
import { randomUUID } from 'node:crypto';
import { EnrollError } from '../errors.js';
import type { BulkRevocationJob, BulkRevocationStore, BulkSelector, BulkTarget, RevokedCertificate } from './ports.js';

export interface BulkRevocationDeps {
  store: BulkRevocationStore;
  revoker: {
    revokeCertificates(serials: string[], input: { reason: string; actor: string; requestId?: string }): Promise<{ revoked: RevokedCertificate[] }>;
  };
  /** Hands a created job to the job queue (BullMQ, job id = the job's id). */
  enqueue(id: string): Promise<void>;
  /** Targets revoked per statement. */
  batchSize: number;
  /** Each batch done (metrics, the console's live view). */
  onProgress?: ((job: { id: string; revoked: RevokedCertificate[] }) => void) | undefined;
}

export const DRY_RUN_SAMPLE = 20;

/** The request id on a job's audit rows; the store counts `revoked` from them. */
export const bulkRequestId = (id: string): string => `bulk:${id}`;

export function createBulkRevocation(deps: BulkRevocationDeps) {
  const { store } = deps;
  return {
    async dryRun(selector: BulkSelector): Promise<{ count: number; sample: BulkTarget[] }> {
      return store.preview(selector, DRY_RUN_SAMPLE);
    },

    /** Records the job and its frozen targets, then queues it; progress is at get(id). */
    async start(input: { selector: BulkSelector; reason: string; actor: string; requestId?: string | undefined }): Promise<BulkRevocationJob> {
      const job = await store.create({ id: randomUUID(), ...input });
      await deps.enqueue(job.id);
      return job;
    },

    get: (id: string) => store.get(id),
    list: (limit: number) => store.list(limit),

    /** Queues every unfinished job again (a restart; queueing is idempotent by job id). */
    async resumeUnfinished(): Promise<number> {
      const ids = await store.unfinished();
      for (const id of ids) await deps.enqueue(id);
      return ids.length;
    },

    /** The job body: revokes the pending targets batch by batch until none is left. */
    async run(id: string): Promise<BulkRevocationJob> {
      const job = await store.get(id);
      if (!job) throw new EnrollError('not-found', `no bulk revocation ${id}`);
      if (job.status === 'done') return job;
      await store.setStatus(id, 'running');
      try {
        for (;;) {
          const batch = await store.pending(id, deps.batchSize);
          if (batch.length === 0) break;
          const requestId = bulkRequestId(id);
          const { revoked } = await deps.revoker.revokeCertificates(batch.map((t) => t.serial), { reason: job.reason, actor: job.actor, requestId });
          await store.markProcessed(id, batch.map((t) => t.position), requestId);
          deps.onProgress?.({ id, revoked });
        }
        await store.setStatus(id, 'done');
      } catch (error) {
        await store.setStatus(id, 'failed', (error as Error).message).catch(() => undefined);
        throw error;
      }
      return (await store.get(id))!;
    },
  };
}

export type BulkRevocation = ReturnType<typeof createBulkRevocation>;
