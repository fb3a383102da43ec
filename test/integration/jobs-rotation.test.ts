// Server-driven renewal on BullMQ (docs/architecture.md), on real Postgres and Redis:
//  - the sweep hints each certificate inside its renewal window once, over devices/<id>/cert/rotate, to a live session
//    at once or to a device that comes back and subscribes;
//  - FLT-06: a worker killed (SIGKILL) or stalled past lockDuration right after the hint's effect: the job runs again
//    on another worker, and the hint is still sent once;
//  - the grace job supersedes a predecessor whose successor never connected, and cuts its live session;
//  - Redis down at start: enrollment and revocation work, startup does not wait, and the sweep resumes when Redis is back.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createPgRenewalStore, createPgRotationListener } from '@enrolld/db';
import { routes, topics } from '@enrolld/protocol';
import { createRotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import { createJobMetrics } from '../../server/src/jobs/job-metrics.js';
import { loadConfig } from '../../server/src/config.js';
import { jobRuntimeOptions } from '../../server/src/compose/worker.js';
import { createJobRuntime } from '../../server/src/jobs/job-runtime.js';
import { createRotationProcessor, hintJobId, ROTATION_QUEUE } from '../../server/src/jobs/rotation-jobs.js';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { REPO_ROOT, TSX_CLI } from '../support/processes.js';
import { mustConnect } from '../support/renew-mqtt.js';
import { credsFrom, enrollDevice, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const testPrefix = () => `enrolld-test-${randomBytes(6).toString('hex')}`;

/** A counter's value on the server's /metrics (0 when the series is not there yet). */
async function counter(server: TestServer, series: RegExp): Promise<number> {
  const text = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
  return Number(series.exec(text)?.[1] ?? 0);
}
const SWEEPS_COMPLETED = /enrolld_jobs_total\{queue="rotation",name="sweep",outcome="completed"\} (\d+)/;
const HINTS_SENT = /enrolld_rotation_hints_sent_total (\d+)/;
const REDIS_UP = /enrolld_jobs_redis_up (\d+)/;

/** The server's job runtime, once it has reached Redis (it connects in the background after start). */
async function readyJobs(server: TestServer) {
  await waitFor(async () => (await counter(server, REDIS_UP)) === 1, 15_000, 'the job runtime to reach Redis', 50);
  return server.running.jobs!;
}

/** No hint job is waiting, delayed or running: every hint job a sweep queued has run. */
async function hintsDrained(queue: Queue): Promise<boolean> {
  // The schedulers always keep their next sweep and supersede jobs delayed; only hint jobs count here.
  const pending = await queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
  return pending.every((job) => job.name !== 'hint');
}

async function obliterate(prefix: string): Promise<void> {
  const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const queue = new Queue(ROTATION_QUEUE, { connection, prefix });
  await queue.obliterate({ force: true }).catch(() => undefined);
  await queue.close();
  await connection.quit();
}

describe('rotation sweep on the real composition', () => {
  let server: TestServer;
  const prefix = testPrefix();
  /** The test's own view of the server's queue, to see pending hint jobs. */
  let redis: Redis;
  let rotationQueue: Queue;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    rotationQueue = new Queue(ROTATION_QUEUE, { connection: redis, prefix });
    server = await startTestServer({
      env: {
        // 1 h certificates, backdated 5 min, window 0.99: every new certificate is inside its renewal window at once.
        CERT_LIFETIME: '1h',
        RENEWAL_WINDOW: '0.99',
        // The test runs each sweep itself (sweepNow); the schedule stays out of the way.
        ROTATION_SWEEP_INTERVAL: '1h',
        ROTATION_HINT_JITTER: '1s',
        JOBS_PREFIX: prefix,
      },
    });
  });
  afterAll(async () => {
    await server.stop();
    await rotationQueue.close();
    await redis.quit();
    await obliterate(prefix);
  });

  it('hints each due certificate once: live sessions at once, an offline device when it subscribes; counted on /metrics', async () => {
    const online = await enrollDevice(server, uniqueDeviceId('hint-on'));
    const offline = await enrollDevice(server, uniqueDeviceId('hint-off'));
    const session = await mustConnect(server.running.mqttsPort, server.chainPem, online, [topics.rotate(online.deviceId)]);
    const jobs = await readyJobs(server);

    await jobs.sweepNow();
    await waitFor(() => session.messages.some((m) => m.topic === topics.rotate(online.deviceId)), 15_000, 'a rotation hint');
    const hint = JSON.parse(session.messages.find((m) => m.topic === topics.rotate(online.deviceId))!.payload.toString());
    expect(hint).toMatchObject({ serial: online.serial, reason: 'renewal-window' });

    // The offline device's hint waits in the broker until a session of that certificate subscribes.
    await waitFor(async () => (await server.db.pool.query('SELECT 1 FROM rotation_hints WHERE serial = $1', [offline.serial])).rowCount === 1, 15_000, 'the offline hint');
    const late = await mustConnect(server.running.mqttsPort, server.chainPem, offline, [topics.rotate(offline.deviceId)]);
    await waitFor(() => late.messages.some((m) => m.topic === topics.rotate(offline.deviceId)), 5000, 'the hint on subscribe');

    // Several more sweeps: still one hint each. Each sweepNow resolves when its sweep job has completed; a hint job a
    // sweep queued runs after its jitter, so the queue is drained before the hints are counted.
    const sweepsBefore = await counter(server, SWEEPS_COMPLETED);
    for (let i = 0; i < 3; i++) await jobs.sweepNow();
    await waitFor(async () => (await counter(server, SWEEPS_COMPLETED)) >= sweepsBefore + 3, 15_000, 'three more sweeps', 100);
    await waitFor(() => hintsDrained(rotationQueue), 15_000, 'the hint jobs to run', 50);
    expect(await counter(server, HINTS_SENT)).toBe(2);
    expect(session.messages.filter((m) => m.topic === topics.rotate(online.deviceId))).toHaveLength(1);
    expect(late.messages.filter((m) => m.topic === topics.rotate(offline.deviceId))).toHaveLength(1);
    const rows = await server.db.pool.query('SELECT count(*)::int AS n FROM rotation_hints WHERE serial = ANY($1)', [[online.serial, offline.serial]]);
    expect(rows.rows[0].n).toBe(2);

    // Renewing answers the hint; the successor is not hinted again at once (it is new) — unless it is due itself,
    // which with a 0.99 window it is, after the next sweep: exactly one hint for the successor, never for the old one.
    const csr = await makeCsr({ cn: online.deviceId });
    const renewed = await renewRest(server, online, csr.pem);
    expect(renewed.status).toBe(201);
    const successor = credsFrom(renewed.json(), csr.privateKey);
    await jobs.sweepNow();
    await waitFor(async () => (await server.db.pool.query('SELECT 1 FROM rotation_hints WHERE serial = $1', [successor.serial])).rowCount === 1, 15_000, 'the successor\'s hint');
    await waitFor(() => hintsDrained(rotationQueue), 15_000, 'the hint jobs to run', 50);
    const hinted = await server.db.pool.query('SELECT serial FROM rotation_hints WHERE device_id = $1 ORDER BY serial', [online.deviceId]);
    expect(hinted.rows.map((r: { serial: string }) => r.serial).sort()).toEqual([online.serial, successor.serial].sort());

    const metrics = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
    expect(metrics).toMatch(/enrolld_jobs_total\{queue="rotation",name="sweep",outcome="completed"\} [1-9]/);
    expect(metrics).toMatch(/enrolld_jobs_total\{queue="rotation",name="hint",outcome="completed"\} [1-9]/);
    expect(metrics).toMatch(/enrolld_rotation_hints_sent_total [1-9]/);
    expect(metrics).toMatch(/enrolld_jobs_redis_up 1/);
    expect(metrics).toMatch(/enrolld_job_queue_jobs\{queue="rotation",state="completed"\}/);
    await session.end();
    await late.end();
  });

  it('a certificate is due by the renewalWindowFraction of its profile version; RENEWAL_WINDOW only where the profile sets none', async () => {
    const auth = { authorization: `Bearer ${server.adminToken}` };
    // The server's 1 h certificates, backdated 5 min, have 11/12 of their lifetime left: inside a 0.95 window (and
    // RENEWAL_WINDOW's 0.99), outside a 0.05 one.
    for (const [name, renewalWindowFraction] of [['window-narrow', 0.05], ['window-wide', 0.95]] as const) {
      const spec = { name, kind: 'device', renewalWindowFraction, acl: [{ effect: 'allow', action: 'subscribe', filter: 'devices/{id}/#' }] };
      expect((await postJson(server.apiUrl + routes.adminProfiles, server.rootPem, spec, auth)).status).toBe(201);
    }
    const narrow = await enrollDevice(server, uniqueDeviceId('narrow'), { profile: 'window-narrow' });
    const wide = await enrollDevice(server, uniqueDeviceId('wide'), { profile: 'window-wide' });
    const plain = await enrollDevice(server, uniqueDeviceId('plain'));
    // Each answer tells the device when its window opens, by the same fraction.
    for (const [creds, fraction] of [[narrow, 0.05], [wide, 0.95], [plain, 0.99]] as const) {
      const cert = new X509Certificate(creds.certPem);
      const [notBefore, notAfter] = [Date.parse(cert.validFrom), Date.parse(cert.validTo)];
      expect(creds.renewAfter.getTime()).toBe(notAfter - Math.round((notAfter - notBefore) * fraction));
    }
    const jobs = await readyJobs(server);

    await jobs.sweepNow();
    const hinted = async () =>
      (await server.db.pool.query<{ serial: string }>('SELECT serial FROM rotation_hints WHERE serial = ANY($1)', [[narrow.serial, wide.serial, plain.serial]])).rows.map((r) => r.serial);
    await waitFor(async () => (await hinted()).length >= 2, 15_000, 'the hints of the wide and the plain certificate');
    await waitFor(() => hintsDrained(rotationQueue), 15_000, 'the hint jobs to run', 50);
    expect((await hinted()).sort()).toEqual([wide.serial, plain.serial].sort());
  });
});

describe('FLT-06: a worker dies or stalls right after the hint\'s effect', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  async function liveCertificate(): Promise<{ serial: string; deviceId: string }> {
    const deviceId = uniqueDeviceId('flt06');
    const serial = randomBytes(16).toString('hex').replace(/^./, '1');
    await db.pool.query('INSERT INTO devices (id) VALUES ($1)', [deviceId]);
    await db.pool.query(
      `INSERT INTO certificates (serial, device_id, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at)
       VALUES ($1, $2, $3, $3, '\\x30', '\\x30', now() - interval '50 minutes', now() + interval '10 minutes', now())`,
      [serial, deviceId, randomBytes(32)],
    );
    return { serial, deviceId };
  }

  for (const mode of ['kill', 'stall'] as const) {
    it(`${mode}: the job runs again elsewhere and the hint is sent once`, async () => {
      const prefix = testPrefix();
      const cert = await liveCertificate();
      const notified: string[] = [];
      const listener = createPgRotationListener({ connectionString: db.url });
      await listener.start({ onHint: (h) => notified.push(h.serial), onRenewal: () => undefined, onConnection: () => undefined });
      const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      const queue = new Queue(ROTATION_QUEUE, { connection, prefix });
      const child = spawn(process.execPath, [TSX_CLI, 'test/support/jobs-crash-worker.ts'], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, REDIS_URL, JOBS_PREFIX: prefix, CRASH_MODE: mode, LOCK_MS: '1000' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
      const registry = new Registry();
      let runtime: ReturnType<typeof createJobRuntime> | undefined;
      try {
        await waitFor(() => out.includes('"ready":true'), 30_000, 'the crash worker');
        await queue.add('hint', { serial: cert.serial, deviceId: cert.deviceId }, { jobId: hintJobId(cert.serial), attempts: 3 });
        await waitFor(() => out.includes('"effect":"hint"'), 10_000, 'the first run\'s effect');
        if (mode === 'kill') expect([137, 'SIGKILL']).toContain(await exited); // tsx's parent exits 128 + 9

        // Another worker (the real runtime) takes the job over once its lock has expired.
        const metrics = createJobMetrics(registry, () => []);
        runtime = createJobRuntime({
          // The shipped defaults (config), with a short lock so the takeover happens within the test.
          options: { ...jobRuntimeOptions(loadConfig({ REDIS_URL }), db.url), prefix, sweepIntervalMs: 3600_000, supersedeIntervalMs: 3600_000, lockDurationMs: 1000, stalledIntervalMs: 500 },
          logger: pino({ level: 'silent' }),
          metrics,
          process: createRotationProcessor({
            sweep: createRotationSweep({ store: createPgRenewalStore(db.pool), policy: { windowFraction: 1 / 3, jitterMaxMs: 0, jitterShareOfRemaining: 0, batchSize: 10 } }),
            lineage: { supersedeDue: async () => 0 },
            enqueue: { addHints: async () => undefined },
          }),
        });
        runtime.start();
        await waitFor(async () => (await queue.getJob(hintJobId(cert.serial)))?.finishedOn !== undefined, 15_000, 'the re-run');
        const job = await queue.getJob(hintJobId(cert.serial));
        expect(job?.returnvalue).toEqual({ sent: false }); // the re-run found the hint already sent
        // A hint claimed now is notified after any earlier one (NOTIFY is delivered in commit order, PostgreSQL
        // NOTIFY docs): once it is here, a duplicate would be too.
        const marker = await liveCertificate();
        expect(await createPgRenewalStore(db.pool).claimHint(marker.serial)).toMatchObject({ serial: marker.serial });
        await waitFor(() => notified.includes(marker.serial), 5000, 'the marker hint');
        expect(notified.filter((s) => s === cert.serial)).toHaveLength(1);
        const rows = await db.pool.query('SELECT count(*)::int AS n FROM rotation_hints WHERE serial = $1', [cert.serial]);
        expect(rows.rows[0].n).toBe(1);
        const stalled = (await registry.getSingleMetricAsString('enrolld_jobs_stalled_total')).match(/enrolld_jobs_stalled_total\{queue="rotation"\} (\d+)/);
        expect(Number(stalled?.[1] ?? 0)).toBeGreaterThanOrEqual(1);
        process.stdout.write(`${JSON.stringify({ id: 'FLT-06', mode, hintsSent: notified.filter((s) => s === cert.serial).length, stalledJobs: Number(stalled?.[1] ?? 0) })}\n`);
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await exited;
        }
        await runtime?.stop();
        await listener.stop();
        await queue.obliterate({ force: true }).catch(() => undefined);
        await queue.close();
        await connection.quit();
      }
    });
  }
});

describe('grace period', () => {
  it('supersedes a predecessor whose successor never connected, and cuts its live session', async () => {
    const prefix = testPrefix();
    const server = await startTestServer({ env: { SUPERSEDE_GRACE: '2s', ROTATION_SWEEP_INTERVAL: '1h', JOBS_PREFIX: prefix } });
    try {
      const current = await enrollDevice(server, uniqueDeviceId('grace'));
      const session = await mustConnect(server.running.mqttsPort, server.chainPem, current);
      const renewed = await renewRest(server, current, (await makeCsr({ cn: current.deviceId })).pem);
      expect(renewed.status).toBe(201);
      const issuedAt = Date.now();
      const cutAt = await session.closed;
      const { rows } = await server.db.pool.query('SELECT revoked_at, revocation_reason FROM certificates WHERE serial = $1', [current.serial]);
      expect(rows[0].revocation_reason).toBe(4);
      // The session is cut inside the revocation call; the counter moves when that call returns.
      await waitFor(async () => /enrolld_rotation_superseded_total\{trigger="grace"\} 1/.test((await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text), 5000, 'the grace counter');
      process.stdout.write(`${JSON.stringify({ id: 'ROT-02', trigger: 'grace', issuedToCutMs: Math.round(performance.timeOrigin + cutAt - issuedAt) })}\n`);
    } finally {
      await server.stop();
      await obliterate(prefix);
    }
  });
});

describe('Redis down', () => {
  it('enrollment, renewal and revocation work without Redis, startup does not wait, and the sweep resumes when Redis returns', async () => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(REDIS_URL).port || 6379) });
    await proxy.down();
    const prefix = testPrefix();
    const started = Date.now();
    const server = await startTestServer({
      env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, CERT_LIFETIME: '1h', RENEWAL_WINDOW: '0.99', ROTATION_SWEEP_INTERVAL: '1s', ROTATION_HINT_JITTER: '1s', JOBS_PREFIX: prefix },
    });
    try {
      const startupMs = Date.now() - started;
      const device = await enrollDevice(server, uniqueDeviceId('nored'));
      const csr = await makeCsr({ cn: device.deviceId });
      expect((await renewRest(server, device, csr.pem)).status).toBe(201);
      const other = await enrollDevice(server, uniqueDeviceId('nored-rev'));
      const revoke = await postJson(server.apiUrl + routes.adminRevokeDevice(other.deviceId), server.rootPem, { reason: 'cessationOfOperation' }, { authorization: `Bearer ${server.adminToken}` });
      expect(revoke.status).toBe(200);
      const metricsDown = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
      expect(metricsDown).toMatch(/enrolld_jobs_redis_up 0/);
      const successor = credsFrom((await renewRest(server, device, csr.pem)).json(), csr.privateKey);
      expect(await server.db.pool.query('SELECT 1 FROM rotation_hints')).toMatchObject({ rowCount: 0 });

      const back = Date.now();
      await proxy.up();
      await waitFor(async () => (await server.db.pool.query('SELECT 1 FROM rotation_hints WHERE serial = $1', [successor.serial])).rowCount === 1, 30_000, 'the sweep after Redis returned');
      process.stdout.write(`${JSON.stringify({ id: 'jobs-redis-down', startupMs, sweepResumedAfterMs: Date.now() - back })}\n`);
    } finally {
      await server.stop();
      await proxy.close();
      await obliterate(prefix);
    }
  });
});
