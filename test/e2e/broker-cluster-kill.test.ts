// Two `enrolld broker` processes of one Redis cluster beside an `enrolld api`: one broker is killed with SIGKILL in the
// middle of a run, its devices move to the other, and a device revoked before the kill is refused there. Then the same
// at fleet size through the simulator (`--spawn-cluster 2`, the node-kill storm): 100 devices over the local cluster
// form, devices revoked before and during the failover, each one tried on the surviving node.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { routes, type EnrollResponse } from '@enrolld/protocol';
import { resolveOptions, runWithSpawnedCluster } from '@enrolld/device-sim';
import { clusterPrefixFor, dropClusterKeys, percentile, report, TEST_REDIS_URL } from '../support/broker-harness.js';
import { makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { postJson } from '../support/http.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort, spawnBroker, spawnEnrolld, type BrokerProcess, type EnrolldProcess } from '../support/processes.js';

const DEVICES = 20;

describe('broker cluster: one node killed', () => {
  let db: TestDatabase;
  let home: string;
  let api: EnrolldProcess;
  const brokers: Array<{ process: BrokerProcess; port: number }> = [];
  const prefix = clusterPrefixFor('kill');
  let rootPem: string;
  let adminToken: string;
  let apiUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-cluster-'));
    const common = { ENROLLD_HOME: home, DATABASE_URL: db.url, LISTEN_HOST: '127.0.0.1', REDIS_URL: TEST_REDIS_URL };
    const httpsPort = await freePort();
    api = await spawnEnrolld({ ...common, HTTPS_PORT: String(httpsPort) }, ['api']);
    apiUrl = `https://localhost:${httpsPort}`;
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      brokers.push({ port, process: await spawnBroker({ ...common, MQTTS_PORT: String(port), BROKER_CLUSTER: 'redis', BROKER_CLUSTER_PREFIX: prefix, BROKER_HEARTBEAT_INTERVAL: '1s' }) });
    }
    rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
  }, 120_000);
  afterAll(async () => {
    for (const broker of brokers) await broker.process.stop();
    await api?.stop();
    await db?.drop();
    await dropClusterKeys(prefix);
    await rm(home, { recursive: true, force: true });
  });

  async function enroll(): Promise<{ deviceId: string; key: string; cert: string }> {
    const deviceId = randomDeviceId('kill');
    const tokenRes = await postJson(apiUrl + routes.adminTokens, rootPem, { deviceId }, { authorization: `Bearer ${adminToken}` });
    const token = tokenRes.json<Array<{ token: string }>>()[0]!.token;
    const csr = await makeCsr({ cn: deviceId });
    const body = (await postJson(apiUrl + routes.enroll, rootPem, { token, csr: csr.pem })).json<EnrollResponse>();
    const issuingPem = body.chain.split(/(?<=-----END CERTIFICATE-----\n?)/)[0]!;
    return { deviceId, key: csr.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), cert: body.certificate + issuingPem };
  }

  function connect(port: number, device: { deviceId: string; key: string; cert: string }): Promise<{ client?: MqttClient; code?: number }> {
    return new Promise((resolve) => {
      const c = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port, servername: 'localhost', ca: rootPem, key: device.key, cert: device.cert, clientId: device.deviceId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 });
      c.once('connect', () => resolve({ client: c }));
      c.once('error', (e: Error & { code?: number | string }) => { c.end(true); resolve({ code: typeof e.code === 'number' ? e.code : -1 }); });
      c.once('close', () => { c.end(true); resolve({ code: -1 }); });
    });
  }

  it('SIGKILL one broker: its devices come back on the other, a device revoked before the kill is refused there', async () => {
    const [node1, node2] = brokers as [{ process: BrokerProcess; port: number }, { process: BrokerProcess; port: number }];
    const fleet = await Promise.all(Array.from({ length: DEVICES }, () => enroll()));
    const sessions = await Promise.all(fleet.map((d) => connect(node1.port, d)));
    expect(sessions.every((s) => s.client)).toBe(true);

    const [revoked, ...healthy] = fleet;
    const cut = new Promise<void>((resolve) => sessions[0]!.client!.once('close', () => resolve()));
    const revokedRes = await postJson(apiUrl + routes.adminRevokeDevice(revoked!.deviceId), rootPem, { reason: 'keyCompromise' }, { authorization: `Bearer ${adminToken}` });
    expect(revokedRes.status).toBeLessThan(300);
    await cut;

    // Each device reconnects to the surviving node as soon as its connection to the killed one drops.
    const killedAt = performance.now();
    const back = healthy.map((device, i) =>
      new Promise<number>((resolve) => {
        sessions[i + 1]!.client!.once('close', async () => {
          for (;;) {
            const outcome = await connect(node2.port, device);
            if (outcome.client) {
              outcome.client.end(true);
              return resolve(performance.now() - killedAt);
            }
          }
        });
      }),
    );
    node1.process.child.kill('SIGKILL');
    const times = (await Promise.all(back)).sort((a, b) => a - b);
    const revokedAttempt = await connect(node2.port, revoked!);
    report('CLUSTER-KILL', revokedAttempt.code === 5, {
      devices: healthy.length,
      allBackMs: +times.at(-1)!.toFixed(0),
      p99BackMs: +percentile(times, 0.99).toFixed(0),
      revokedAdmitted: revokedAttempt.client ? 1 : 0,
    });
    expect(times).toHaveLength(healthy.length);
    expect(revokedAttempt.code).toBe(5);
  }, 120_000);
});

describe('broker cluster: node-kill storm through the simulator', () => {
  let db: TestDatabase;
  const reportDir = mkdtempSync(path.join(tmpdir(), 'sim-cluster-kill-'));
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(reportDir, { recursive: true, force: true });
  });

  it('100 devices over 2 nodes: node 1 SIGKILLed, its devices come back on node 2, the 6 revoked stay out on every node', async () => {
    const opts = resolveOptions({
      scenario: 'reconnect-storm', stormTrigger: 'kill-node', devices: 100, revokeCount: 6, reconnectBaseMs: 500, reconnectCapMs: 4_000,
      telemetryIntervalMs: 2_000, reportDir, reportName: 'kill-node', progress: false, seed: 11, timeoutMs: 90_000,
    });
    const { report: sim, clusterLog, clusterPrefix } = await runWithSpawnedCluster(
      opts,
      { brokers: 2, databaseUrl: db.url, redisUrl: TEST_REDIS_URL, env: { BROKER_HEARTBEAT_INTERVAL: '1s', LISTEN_HOST: '127.0.0.1' }, logFile: path.join(reportDir, 'cluster.log') },
      { log: () => {}, printTables: false },
    );
    await dropClusterKeys(clusterPrefix);
    const failed = sim.checks.filter((c) => !c.ok);
    expect({ failed, log: failed.length ? clusterLog : '' }).toEqual({ failed: [], log: '' });
    const onKilled = Number(sim.figures['devices on the killed node']);
    expect(onKilled).toBeGreaterThan(0);
    expect(sim.figures['devices back on another node']).toBe(onKilled);
    expect(sim.figures['revoked devices admitted']).toBe(0);
    expect(sim.counts).toMatchObject({ total: 100, revoked: 6, online: 94 });
    report('CLUSTER-KILL-SIM', true, {
      devices: 100, onKilledNode: onKilled, p50BackS: sim.figures['time to 50% back (s)'], p90BackS: sim.figures['time to 90% back (s)'], p99BackS: sim.figures['time to 99% back (s)'],
    });
  }, 240_000);
});
