// Bulk revocations have a BullMQ queue of their own (docs/architecture.md §7a), on the machine's Redis: while a bulk
// job holds its worker, a rotation sweep still runs at once, even with one rotation worker slot
// (JOBS_CONCURRENCY=1); and the bulk job is on the `bulk-revoke` queue, not the rotation queue.
import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createJobRequestRelay } from '@enrolld/core/events/job-request-relay.js';
import { loadConfig } from '../../server/src/config.js';
import { jobRuntimeOptions } from '../../server/src/compose/worker.js';
import { createJobMetrics } from '../../server/src/jobs/job-metrics.js';
import { createJobRuntime } from '../../server/src/jobs/job-runtime.js';
import { BULK_REVOKE_QUEUE, bulkRevokeJobId, ROTATION_QUEUE } from '../../server/src/jobs/rotation-jobs.js';
import { waitFor } from '../support/wait-for.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('the bulk revocation queue', () => {
  const prefix = `enrolld-test-${randomBytes(6).toString('hex')}`;
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  afterAll(async () => {
    for (const name of [ROTATION_QUEUE, BULK_REVOKE_QUEUE]) {
      const queue = new Queue(name, { connection: redis, prefix });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
    await redis.quit();
  });

  it('a running bulk job does not hold up a rotation sweep, with one rotation worker slot', async () => {
    const requests = createJobRequestRelay();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let bulkStarted = false;
    let bulkFinished = false;
    const config = loadConfig({ REDIS_URL, JOBS_CONCURRENCY: '1', BULK_REVOKE_CONCURRENCY: '1' });
    const runtime = createJobRuntime({
      options: { ...jobRuntimeOptions(config, 'postgres://unused/bulk-queue'), prefix, sweepIntervalMs: 3600_000, supersedeIntervalMs: 3600_000 },
      logger: pino({ level: 'silent' }),
      metrics: createJobMetrics(new Registry(), () => []),
      requests,
      process: async (job) => {
        if (job.name === 'bulk-revoke') {
          bulkStarted = true;
          await gate;
          bulkFinished = true;
          return { revoked: 0 };
        }
        return { due: 0 };
      },
    });
    runtime.start();
    try {
      const id = randomUUID();
      await waitFor(async () => {
        // The relay has a consumer once the runtime reached Redis.
        const queued = await requests.request({ name: 'bulk-revoke', id }).then(() => true, () => false);
        return queued;
      }, 15_000, 'the job runtime to reach Redis', 50);
      await waitFor(() => bulkStarted, 15_000, 'the bulk job to start');
      const bulkQueue = new Queue(BULK_REVOKE_QUEUE, { connection: redis, prefix });
      expect(await (await bulkQueue.getJob(bulkRevokeJobId(id)))?.isActive()).toBe(true);
      await bulkQueue.close();
      // The sweep is queued and completes while the bulk job still holds its worker.
      await runtime.sweepNow();
      expect(bulkFinished).toBe(false);
      release();
      await waitFor(() => bulkFinished, 15_000, 'the bulk job to finish');
    } finally {
      release();
      await runtime.stop();
    }
  });
});
