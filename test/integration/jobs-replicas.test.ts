// Jobs keep one effect each across replicas (docs/architecture.md §8, §9): two job runtimes on one queue and one Postgres,
// as two `enrolld worker`s (or `enrolld up`s) would be, both queue the hints of the same due certificates at once. The job
// id (`hint-<serial>`) makes that one job per certificate, and the effect keyed by the serial one hint per certificate.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createPgRenewalStore, createPgRotationListener } from '@enrolld/db';
import { createRotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import { loadConfig } from '../../server/src/config.js';
import { jobRuntimeOptions } from '../../server/src/compose/worker.js';
import { createJobMetrics } from '../../server/src/jobs/job-metrics.js';
import { createJobRuntime } from '../../server/src/jobs/job-runtime.js';
import { createRotationProcessor, hintJobId, ROTATION_QUEUE } from '../../server/src/jobs/rotation-jobs.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { waitFor } from '../support/wait-for.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('jobs across replicas', () => {
  let db: TestDatabase;
  const prefix = `enrolld-test-${randomBytes(6).toString('hex')}`;
  let connection: Redis;
  let queue: Queue;
  const runtimes: Array<ReturnType<typeof createJobRuntime>> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    queue = new Queue(ROTATION_QUEUE, { connection, prefix });
  });
  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.stop()));
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await connection.quit();
    await db?.drop();
  });

  /** A certificate 50 minutes into its hour: inside a 1/3 renewal window. */
  async function dueCertificate(): Promise<string> {
    const deviceId = `jr-${randomBytes(5).toString('hex')}`;
    const serial = randomBytes(16).toString('hex').replace(/^./, '1');
    await db.pool.query('INSERT INTO devices (id) VALUES ($1)', [deviceId]);
    await db.pool.query(
      `INSERT INTO certificates (serial, device_id, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at)
       VALUES ($1, $2, $3, $3, '\\x30', '\\x30', now() - interval '50 minutes', now() + interval '10 minutes', now())`,
      [serial, deviceId, randomBytes(32)],
    );
    return serial;
  }

  function replica(): ReturnType<typeof createJobRuntime> {
    const sweep = createRotationSweep({ store: createPgRenewalStore(db.pool), policy: { windowFraction: 1 / 3, jitterMaxMs: 0, jitterShareOfRemaining: 0, batchSize: 100 } });
    const runtime: ReturnType<typeof createJobRuntime> = createJobRuntime({
      options: { ...jobRuntimeOptions(loadConfig({ REDIS_URL }), db.url), prefix, sweepIntervalMs: 3600_000, supersedeIntervalMs: 3600_000 },
      logger: pino({ level: 'silent' }),
      metrics: createJobMetrics(new Registry(), () => []),
      process: createRotationProcessor({ sweep, lineage: { supersedeDue: async () => 0 }, enqueue: { addHints: (hints) => runtime.enqueue.addHints(hints) } }),
    });
    runtimes.push(runtime);
    runtime.start();
    return runtime;
  }

  it('two replicas queue the same hints at once: one job per certificate (job id) and one hint each (effect by serial)', async () => {
    const serials = await Promise.all(Array.from({ length: 10 }, () => dueCertificate()));
    const notified: string[] = [];
    const listener = createPgRotationListener({ connectionString: db.url });
    await listener.start({ onHint: (h) => notified.push(h.serial), onRenewal: () => undefined, onConnection: () => undefined });
    try {
      const [a, b] = [replica(), replica()];
      // Each replica's sweep found the same due certificates; both queue them at the same moment.
      const due = await createRotationSweep({ store: createPgRenewalStore(db.pool), policy: { windowFraction: 1 / 3, jitterMaxMs: 0, jitterShareOfRemaining: 0, batchSize: 100 } }).findDue();
      expect(due.map((d) => d.serial).sort()).toEqual([...serials].sort());
      await waitFor(async () => {
        try {
          await Promise.all([a.counts(), b.counts()]);
          return true;
        } catch {
          return false;
        }
      }, 15_000, 'both job runtimes to reach Redis', 50);
      await Promise.all([a.enqueue.addHints(due), b.enqueue.addHints(due), a.enqueue.addHints(due)]);

      const hintJobs = async () => (await queue.getJobs(['completed', 'failed', 'waiting', 'delayed', 'active', 'prioritized'])).filter((j) => j.name === 'hint');
      await waitFor(async () => (await hintJobs()).every((j) => j.finishedOn !== undefined) && (await hintJobs()).length >= serials.length, 15_000, 'the hint jobs to run', 50);
      const jobs = await hintJobs();
      expect(jobs.map((j) => j.id).sort()).toEqual(serials.map(hintJobId).sort());
      // A hint claimed now is notified after any earlier one (NOTIFY in commit order): once it is here, a duplicate would be too.
      const marker = await dueCertificate();
      expect(await createPgRenewalStore(db.pool).claimHint(marker)).toMatchObject({ serial: marker });
      await waitFor(() => notified.includes(marker), 5000, 'the marker hint');
      expect(notified.filter((s) => serials.includes(s)).sort()).toEqual([...serials].sort());
      const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM rotation_hints WHERE serial = ANY($1)', [serials]);
      expect(rows[0]!.n).toBe(serials.length);
    } finally {
      await listener.stop();
    }
  });
});
