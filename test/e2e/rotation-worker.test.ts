// Rotation across processes: `enrolld up` (API + broker, JOBS=off) and `enrolld worker` (the BullMQ sweep) as real
// processes on one Postgres and Redis. The worker's hint reaches the device through NOTIFY → broker; the device renews
// over MQTT, reconnects with the successor, and that first CONNECT supersedes the predecessor.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { routes, topics, type CreatedToken, type EnrollResponse } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { postJson } from '../support/http.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort, REPO_ROOT, spawnEnrolld, ENROLLD_BIN, type EnrolldProcess } from '../support/processes.js';
import { connectWith, mustConnect, renewOverMqtt, renewTopics } from '../support/renew-mqtt.js';
import { credsFrom } from '../support/renew-support.js';
import { refusalOf } from '../support/refusal.js';
import { waitFor } from '../support/wait-for.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

function spawnWorker(env: Record<string, string>): Promise<{ child: ChildProcess; output(): string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [ENROLLD_BIN, 'worker'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready:\n${out}`)), 60_000);
    const check = setInterval(() => {
      if (!out.includes('"enrolld worker ready"')) return;
      clearInterval(check);
      clearTimeout(timer);
      resolve({
        child,
        output: () => out,
        async stop() {
          if (child.exitCode !== null) return child.exitCode;
          child.kill('SIGTERM');
          return exited;
        },
      });
    }, 50);
    void exited.then((code) => {
      clearInterval(check);
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}):\n${out}`));
    });
  });
}

describe('enrolld up (JOBS=off) + enrolld worker', () => {
  let db: TestDatabase;
  let home: string;
  let up: EnrolldProcess;
  let worker: Awaited<ReturnType<typeof spawnWorker>>;
  let apiUrl: string;
  let mqttsPort: number;
  let rootPem: string;
  let chainPem: string;
  let adminToken: string;
  const prefix = `enrolld-e2e-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-rot-e2e-'));
    const httpsPort = await freePort();
    mqttsPort = await freePort();
    const shared = {
      ENROLLD_HOME: home,
      DATABASE_URL: db.url,
      REDIS_URL,
      JOBS_PREFIX: prefix,
      CERT_LIFETIME: '1h',
      RENEWAL_WINDOW: '0.99',
      ROTATION_SWEEP_INTERVAL: '1s',
      ROTATION_HINT_JITTER: '1s',
    };
    up = await spawnEnrolld({ ...shared, HTTPS_PORT: String(httpsPort), MQTTS_PORT: String(mqttsPort), LISTEN_HOST: '127.0.0.1', JOBS: 'off' });
    worker = await spawnWorker(shared);
    apiUrl = `https://localhost:${httpsPort}`;
    rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    chainPem = await readFile(path.join(home, 'ca', 'chain.pem'), 'utf8');
    adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
  });
  afterAll(async () => {
    const workerCode = await worker?.stop();
    const upCode = await up?.stop();
    expect(workerCode).toBe(0);
    expect(upCode).toBe(0);
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue('rotation', { connection, prefix });
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await connection.quit();
    await db.drop();
    await rm(home, { recursive: true, force: true });
  });

  it('the worker\'s hint reaches the device; it renews over MQTT; its next CONNECT supersedes the old certificate', async () => {
    const deviceId = `rot-e2e-${randomBytes(4).toString('hex')}`;
    const tokenRes = await postJson(apiUrl + routes.adminTokens, rootPem, { deviceId }, { authorization: `Bearer ${adminToken}` });
    const token = tokenRes.json<CreatedToken[]>()[0]!.token;
    const csr = await makeCsr({ cn: deviceId });
    const enrolled = await postJson(apiUrl + routes.enroll, rootPem, { token, csr: csr.pem });
    expect(enrolled.status).toBe(201);
    const current = credsFrom(enrolled.json<EnrollResponse>(), csr.privateKey);

    const session = await mustConnect(mqttsPort, chainPem, current, [topics.rotate(deviceId), ...renewTopics(deviceId)]);
    await waitFor(() => session.messages.some((m) => m.topic === topics.rotate(deviceId)), 20_000, 'the rotation hint', 50).catch((error: Error) => {
      throw new Error(`${error.message}; worker output:\n${worker.output().slice(-3000)}`);
    });
    const newCsr = await makeCsr({ cn: deviceId });
    const answer = await renewOverMqtt(session, deviceId, newCsr.pem);
    expect(answer.accepted).toBe(true);
    if (!answer.accepted) return;
    const next = credsFrom(answer.response, newCsr.privateKey);
    await session.end();
    const successor = await mustConnect(mqttsPort, chainPem, next);
    // The successor's first CONNECT supersedes the old certificate without the client being told; poll until the
    // broker refuses it.
    let reconnect = 'connack 0';
    await waitFor(async () => {
      const probe = await connectWith(mqttsPort, chainPem, current);
      if (probe.ok) await probe.session.end();
      reconnect = refusalOf(probe);
      return reconnect !== 'connack 0';
    }, 10_000, 'the old certificate refused', 50);
    expect(['tls-closed', 'connack 5']).toContain(reconnect);
    // The broker refuses the predecessor as soon as the successor is admitted; the supersede is committed after that.
    let reason: number | null = null;
    await waitFor(async () => {
      const { rows } = await db.pool.query('SELECT revocation_reason FROM certificates WHERE serial = $1', [current.serial]);
      reason = rows[0].revocation_reason;
      return reason !== null;
    }, 10_000, 'the old certificate superseded in the record', 50);
    expect(reason).toBe(4);
    const hints = await db.pool.query('SELECT count(*)::int AS n FROM rotation_hints WHERE device_id = $1', [deviceId]);
    expect(hints.rows[0].n).toBeGreaterThanOrEqual(1);
    await successor.end();
  });
});
