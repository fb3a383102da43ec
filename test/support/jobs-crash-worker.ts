// A rotation worker that dies (or stalls) right after a job's effect, before BullMQ can record the job as done:
// the FLT-06 "worker crash or stall mid-job" case. Run as its own process by jobs-rotation.test.ts.
//   CRASH_MODE=kill  → SIGKILL itself after the effect
//   CRASH_MODE=stall → block the event loop past lockDuration after the effect, then finish normally
// Env: DATABASE_URL, REDIS_URL, JOBS_PREFIX, LOCK_MS.
import { Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { createPgRenewalStore, createPool } from '@enrolld/db';
import { createRotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import { createRotationProcessor, ROTATION_QUEUE } from '../../server/src/jobs/rotation-jobs.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

const pool = createPool({ connectionString: env('DATABASE_URL'), max: 2 });
const sweep = createRotationSweep({
  store: createPgRenewalStore(pool),
  policy: { windowFraction: 1 / 3, jitterMaxMs: 0, jitterShareOfRemaining: 0, batchSize: 100 },
});
const process0 = createRotationProcessor({
  sweep,
  lineage: { supersedeDue: async () => 0 },
  enqueue: { addHints: async () => undefined },
});
const mode = env('CRASH_MODE');
const connection = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: null });
const worker = new Worker(
  ROTATION_QUEUE,
  async (job: Job) => {
    const result = await process0({ name: job.name, data: job.data as unknown });
    process.stdout.write(`${JSON.stringify({ effect: job.name, jobId: job.id, result })}\n`);
    if (mode === 'kill') {
      process.kill(process.pid, 'SIGKILL');
    } else {
      const until = Date.now() + Number(env('LOCK_MS')) * 3;
      while (Date.now() < until) {
        // a blocked event loop: the lock is not renewed, so another worker takes the job as stalled
      }
    }
    return result;
  },
  { connection, prefix: env('JOBS_PREFIX'), lockDuration: Number(env('LOCK_MS')), stalledInterval: Number(env('LOCK_MS')), concurrency: 1 },
);
worker.on('error', () => undefined);
worker.on('failed', (job, error) => process.stdout.write(`${JSON.stringify({ failed: job?.id, error: error.message })}\n`));
worker.on('completed', (job) => process.stdout.write(`${JSON.stringify({ completed: job.id })}\n`));
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.once('SIGTERM', () => {
  void worker.close().then(() => connection.quit()).then(() => pool.end()).then(() => process.exit(0));
});
