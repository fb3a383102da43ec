// The rotation queue's jobs (docs/architecture.md §8):
//   sweep      (scheduled)  finds certificates inside their renewal window; enqueues one `hint` each, with jitter
//   hint       (per serial) sends the hint once: the effect is keyed by the serial in the store, so a job that runs
//                           again after a worker crash or stall sends nothing (BullMQ is at-least-once; FLT-06)
//   supersede  (scheduled)  retires predecessors whose successor never connected within the grace period
//   bulk-revoke (per job)   on its own queue (BULK_REVOKE_QUEUE, BULK_REVOKE_CONCURRENCY), so a large one never delays
//                           the rotation jobs; works through a bulk revocation's frozen target list; a run repeated after a crash or
//                           stall revokes nothing twice (core/src/revocation/bulk-revocation.ts)
// The job id of a hint is its business id (the serial): enqueueing it twice while it exists is a no-op.
import type { Lineage } from '@enrolld/core/renewal/lineage.js';
import type { RotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import type { BulkRevocation } from '@enrolld/core/revocation/bulk-revocation.js';

export const ROTATION_QUEUE = 'rotation';
export const BULK_REVOKE_QUEUE = 'bulk-revoke';

export type RotationJobName = 'sweep' | 'hint' | 'supersede' | 'bulk-revoke';

export interface RotationJob {
  name: string;
  data: unknown;
}

export interface HintJobData {
  serial: string;
  deviceId: string;
}

export interface HintEnqueuer {
  /** Adds hint jobs; `jobId` is `hint-<serial>` so a job already queued or kept is not added again. */
  addHints(hints: Array<HintJobData & { delayMs: number }>): Promise<void>;
}

export interface RotationJobDeps {
  sweep: Pick<RotationSweep, 'findDue' | 'hint'>;
  lineage: Pick<Lineage, 'supersedeDue'>;
  enqueue: HintEnqueuer;
  bulkRevocation?: Pick<BulkRevocation, 'run'> | undefined;
  onHintSent?: (hint: HintJobData) => void;
  onSuperseded?: (count: number) => void;
}

export type RotationJobResult = { due: number } | { sent: boolean } | { superseded: number } | { revoked: number };

export const hintJobId = (serial: string): string => `hint-${serial}`;
export const bulkRevokeJobId = (id: string): string => `bulk-revoke-${id}`;

export function createRotationProcessor(deps: RotationJobDeps) {
  return async function processRotationJob(job: RotationJob): Promise<RotationJobResult> {
    switch (job.name as RotationJobName) {
      case 'sweep': {
        const due = await deps.sweep.findDue();
        await deps.enqueue.addHints(due);
        return { due: due.length };
      }
      case 'hint': {
        const data = job.data as HintJobData;
        const sent = await deps.sweep.hint(data.serial);
        if (sent) deps.onHintSent?.(data);
        return { sent: sent !== undefined };
      }
      case 'supersede': {
        const superseded = await deps.lineage.supersedeDue();
        if (superseded > 0) deps.onSuperseded?.(superseded);
        return { superseded };
      }
      case 'bulk-revoke': {
        if (!deps.bulkRevocation) throw new Error('bulk revocation is not served by this worker');
        const done = await deps.bulkRevocation.run((job.data as { id: string }).id);
        return { revoked: done.revoked };
      }
      default:
        throw new Error(`unknown rotation job ${job.name}`);
    }
  };
}
