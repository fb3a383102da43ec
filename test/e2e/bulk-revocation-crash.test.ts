// A bulk revocation interrupted by a crash: `enrolld up` is SIGKILLed while its in-process worker works through the
// job, and a new `enrolld up` on the same database and Redis resumes it (BullMQ takes the job back once its lock
// expires). Every target ends up revoked exactly once: none twice, none skipped.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { routes, type BulkRevocationJobBody, type CreatedToken, type EnrollResponse } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort, spawnEnrolld, type EnrolldProcess } from '../support/processes.js';
import { waitForValue } from '../support/wait-for.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DEVICES = 300;

describe('bulk revocation across a crash', () => {
  let db: TestDatabase;
  let home: string;
  let up: EnrolldProcess | undefined;
  let env: Record<string, string>;
  let apiUrl: string;
  const prefix = `enrolld-bulk-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-bulk-e2e-'));
    const httpsPort = await freePort();
    env = {
      ENROLLD_HOME: home,
      DATABASE_URL: db.url,
      REDIS_URL,
      JOBS_PREFIX: prefix,
      HTTPS_PORT: String(httpsPort),
      MQTTS_PORT: String(await freePort()),
      LISTEN_HOST: '127.0.0.1',
      JOBS_LOCK_DURATION: '2s',
      JOBS_STALLED_INTERVAL: '1s',
      BULK_REVOKE_BATCH: '3',
    };
    up = await spawnEnrolld(env);
    apiUrl = `https://localhost:${httpsPort}`;
  });
  afterAll(async () => {
    await up?.stop();
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    for (const name of ['rotation', 'bulk-revoke']) {
      const queue = new Queue(name, { connection, prefix });
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
    }
    await connection.quit();
    await db.drop();
    await rm(home, { recursive: true, force: true });
  });

  it('SIGKILL mid-job, restart: the job resumes and every target is revoked exactly once', async () => {
    const rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    const auth = { authorization: `Bearer ${(await readFile(path.join(home, 'admin-token'), 'utf8')).trim()}` };
    const linePrefix = 'line-7-';
    const tokens = (await postJson(apiUrl + routes.adminTokens, rootPem, { prefix: linePrefix, count: DEVICES }, auth)).json<CreatedToken[]>();
    const serials: string[] = [];
    for (let i = 0; i < tokens.length; i += 20) {
      const batch = await Promise.all(
        tokens.slice(i, i + 20).map(async (t) => {
          const csr = await makeCsr({ cn: t.deviceId });
          const res = await postJson(apiUrl + routes.enroll, rootPem, { token: t.token, csr: csr.pem });
          return res.json<EnrollResponse>().serial;
        }),
      );
      serials.push(...batch);
    }
    const started = (await postJson(apiUrl + routes.adminBulkRevocations, rootPem, { selector: { prefix: linePrefix }, reason: 'keyCompromise' }, auth)).json<BulkRevocationJobBody>();
    expect(started.total).toBe(DEVICES);
    const progress = async () => (await httpsRequest(apiUrl + routes.adminBulkRevocation(started.id), rootPem, { headers: auth })).json<BulkRevocationJobBody>();

    const before = await waitForValue(async () => {
      const j = await progress();
      return j.done >= 30 ? j : undefined;
    }, 60_000, 'the job under way', 5);
    up!.child.kill('SIGKILL');
    await new Promise((resolve) => up!.child.once('exit', resolve));
    const atCrash = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM certificates WHERE starts_with(device_id, $1) AND revoked_at IS NOT NULL`, [linePrefix]);
    expect(atCrash.rows[0]!.n).toBeGreaterThanOrEqual(before.done);
    expect(atCrash.rows[0]!.n).toBeLessThan(DEVICES);

    up = await spawnEnrolld(env);
    const done = await waitForValue(async () => {
      const j = await progress();
      return j.status === 'done' ? j : undefined;
    }, 90_000, 'the job resumed and finished', 50);
    expect(done).toMatchObject({ total: DEVICES, done: DEVICES, revoked: DEVICES });

    const audit = await db.pool.query<{ serial: string; n: number }>(
      `SELECT serial, count(*)::int AS n FROM audit_events WHERE action = 'certificate.revoked' AND request_id = $1 GROUP BY serial`,
      [`bulk:${started.id}`],
    );
    expect(audit.rows).toHaveLength(DEVICES);
    expect(audit.rows.filter((r) => r.n !== 1)).toEqual([]);
    expect(new Set(audit.rows.map((r) => r.serial))).toEqual(new Set(serials));
    const unrevoked = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM certificates WHERE starts_with(device_id, $1) AND revoked_at IS NULL`, [linePrefix]);
    expect(unrevoked.rows[0]!.n).toBe(0);
    console.log(JSON.stringify({ id: 'BULK-CRASH', doneAtKill: before.done, revokedAtCrash: atCrash.rows[0]!.n, total: DEVICES }));
  }, 240_000);
});
