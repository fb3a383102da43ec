// The scale-out topology with HAProxy in front, as real processes (docs/architecture.md §6 "Broker cluster" and §11
// "Deployment map"): 2 `enrolld api`, 2 `enrolld broker` of one Redis cluster over one Postgres, and HAProxy on the shipped
// deploy/haproxy.cfg. Every device and API call goes through HAProxy's front ports. MQTT is TCP passthrough, so the
// broker reads the device's client certificate itself; a broker whose /readyz fails (its cluster bus cut, its MQTT port
// still open) gets no new devices.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { routes, type EnrollResponse } from '@enrolld/protocol';
import { clusterPrefixFor, dropClusterKeys, TEST_REDIS_URL } from '../support/broker-harness.js';
import { makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { spawnHaproxy, type HaproxyProcess } from '../support/haproxy.js';
import { httpsRequest, postJson } from '../support/http.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort, REPO_ROOT, spawnBroker, spawnEnrolld, type BrokerProcess, type EnrolldProcess } from '../support/processes.js';
import { freeLowPort } from '../support/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor, waitForValue } from '../support/wait-for.js';

interface Device {
  deviceId: string;
  key: string;
  cert: string;
}

/** A device enrolled through the API at `url` (a token from the admin API, then the CSR), ready for mTLS. */
async function enrollThrough(url: string, rootPem: string, adminToken: string): Promise<Device> {
  const deviceId = randomDeviceId('lb');
  const tokenRes = await postJson(url + routes.adminTokens, rootPem, { deviceId }, { authorization: `Bearer ${adminToken}` });
  const token = tokenRes.json<Array<{ token: string }>>()[0]!.token;
  const csr = await makeCsr({ cn: deviceId });
  const body = (await postJson(url + routes.enroll, rootPem, { token, csr: csr.pem })).json<EnrollResponse>();
  const issuingPem = body.chain.split(/(?<=-----END CERTIFICATE-----\n?)/)[0]!;
  return { deviceId, key: csr.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), cert: body.certificate + issuingPem };
}

/** CONNECT over mTLS to `port`: the session, or the CONNACK return code (-1: closed without one). */
function connectMqtt(port: number, rootPem: string, device: Device): Promise<{ client?: MqttClient; code?: number }> {
  return new Promise((resolve) => {
    const c = mqtt.connect({ protocol: 'mqtts', host: '127.0.0.1', port, servername: 'localhost', ca: rootPem, key: device.key, cert: device.cert, clientId: device.deviceId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 });
    c.once('connect', () => resolve({ client: c }));
    c.once('error', (e: Error & { code?: number | string }) => {
      c.end(true);
      resolve({ code: typeof e.code === 'number' ? e.code : -1 });
    });
    c.once('close', () => {
      c.end(true);
      resolve({ code: -1 });
    });
  });
}

describe('HAProxy in front of the cluster', () => {
  let db: TestDatabase;
  let home: string;
  const apis: EnrolldProcess[] = [];
  const brokers: BrokerProcess[] = [];
  let haproxy: HaproxyProcess;
  let broker1Redis: TcpProxy;
  const prefix = clusterPrefixFor('haproxy');
  const clients: MqttClient[] = [];
  let rootPem: string;
  let adminToken: string;
  let front: { https: number; mqtts: number };
  let frontUrl: string;
  let mqttsPorts: number[];

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-haproxy-cluster-'));
    const common = { ENROLLD_HOME: home, DATABASE_URL: db.url, LISTEN_HOST: '127.0.0.1', REDIS_URL: TEST_REDIS_URL, BROKER_PRESENCE_FLUSH: '50ms' };
    const apiPorts = [await freePort(), await freePort()];
    // The first API creates the CA; the second starts on it.
    for (const port of apiPorts) apis.push(await spawnEnrolld({ ...common, HTTPS_PORT: String(port) }, ['api']));
    // Broker 1 reaches Redis through a proxy the test can cut: its cluster bus goes down, nothing else does. The proxy
    // listens below the ephemeral range, so broker 1 reconnecting to it while it is down can never connect to itself.
    const redis = new URL(TEST_REDIS_URL);
    broker1Redis = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) }, { port: await freeLowPort() });
    const brokerEnv = { ...common, BROKER_CLUSTER: 'redis', BROKER_CLUSTER_PREFIX: prefix };
    mqttsPorts = [await freePort(), await freePort()];
    const httpPorts = [await freePort(), await freePort()];
    const redisUrls = [`redis://127.0.0.1:${broker1Redis.port}`, TEST_REDIS_URL];
    for (let i = 0; i < 2; i++) {
      brokers.push(await spawnBroker({ ...brokerEnv, REDIS_URL: redisUrls[i]!, MQTTS_PORT: String(mqttsPorts[i]), BROKER_HTTP_PORT: String(httpPorts[i]) }));
    }
    front = { https: await freePort(), mqtts: await freePort() };
    frontUrl = `https://localhost:${front.https}`;
    haproxy = await spawnHaproxy({
      LB_MQTTS_BIND: `127.0.0.1:${front.mqtts}`,
      LB_HTTPS_BIND: `127.0.0.1:${front.https}`,
      LB_BROKER_1: `127.0.0.1:${mqttsPorts[0]}`,
      LB_BROKER_2: `127.0.0.1:${mqttsPorts[1]}`,
      LB_BROKER_1_HTTP_PORT: String(httpPorts[0]),
      LB_BROKER_2_HTTP_PORT: String(httpPorts[1]),
      LB_API_1: `127.0.0.1:${apiPorts[0]}`,
      LB_API_2: `127.0.0.1:${apiPorts[1]}`,
    });
    for (const [backend, server] of [['brokers', 'broker-1'], ['brokers', 'broker-2'], ['apis', 'api-1'], ['apis', 'api-2']] as const) {
      await haproxy.waitForServer(backend, server, 'up');
    }
    rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
  }, 180_000);
  afterAll(async () => {
    for (const client of clients) client.end(true);
    await haproxy?.stop();
    for (const broker of brokers) await broker.stop();
    for (const api of apis) await api.stop();
    await broker1Redis?.close();
    await db?.drop();
    await dropClusterKeys(prefix);
    await rm(home, { recursive: true, force: true });
  });

  const enroll = () => enrollThrough(frontUrl, rootPem, adminToken);
  const connectThroughFront = async (device: Device) => {
    const outcome = await connectMqtt(front.mqtts, rootPem, device);
    if (outcome.client) clients.push(outcome.client);
    return outcome;
  };

  /** Which broker process holds a session of `deviceId`, from the presence rows each broker writes under its node id. */
  async function brokerOf(deviceId: string): Promise<number | undefined> {
    const rows = await db.pool.query<{ node_id: string }>('SELECT node_id FROM device_presence WHERE device_id = $1', [deviceId]);
    if (rows.rows.length !== 1) return undefined;
    const index = brokers.findIndex((b) => rows.rows[0]!.node_id.includes(`-${b.child.pid}-`));
    return index === -1 ? undefined : index + 1;
  }

  const readyz = (port: number) =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: routes.readyz }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      }).on('error', reject);
    });

  it('the API front answers /readyz through HAProxy', async () => {
    const res = await httpsRequest(frontUrl + routes.readyz, rootPem);
    expect(res.status).toBe(200);
    expect(res.json<{ status: string }>().status).toBe('ready');
  });

  it('mTLS passes through: the broker admits the device under its certificate identity, on either node', async () => {
    // leastconn: two sessions held at once go to the two brokers.
    const devices = [await enroll(), await enroll()];
    for (const device of devices) expect((await connectThroughFront(device)).client).toBeDefined();
    const nodes: number[] = [];
    for (const device of devices) {
      await waitFor(async () => (await brokerOf(device.deviceId)) !== undefined, 10_000, `presence of ${device.deviceId}`, 50);
      nodes.push((await brokerOf(device.deviceId))!);
    }
    expect(nodes.sort()).toEqual([1, 2]);
  });

  it('a revoked device is refused through HAProxy with CONNACK 5', async () => {
    const device = await enroll();
    const revoked = await postJson(frontUrl + routes.adminRevokeDevice(device.deviceId), rootPem, { reason: 'keyCompromise' }, { authorization: `Bearer ${adminToken}` });
    expect(revoked.status).toBeLessThan(300);
    // Twice: whichever node HAProxy picks refuses it.
    for (let i = 0; i < 2; i++) expect((await connectThroughFront(device)).code).toBe(5);
  });

  it('a broker whose /readyz fails gets no new devices: they connect through the front to the other node', async () => {
    const [broker1, broker2] = brokers as [BrokerProcess, BrokerProcess];
    await broker1Redis.down();
    await waitFor(async () => (await readyz(broker1.httpPort)) === 503, 15_000, 'broker 1 /readyz 503 with its cluster bus cut', 50);
    // Its MQTT port still accepts TCP: only the HTTP check tells HAProxy it would refuse devices.
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(mqttsPorts[0]!, '127.0.0.1', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });
    await haproxy.waitForServer('brokers', 'broker-1', 'down');
    expect((await haproxy.serverStates('brokers')).get('broker-2')).toBe(2);
    expect(await readyz(broker2.httpPort)).toBe(200);

    for (let i = 0; i < 4; i++) {
      const device = await enroll();
      expect((await connectThroughFront(device)).client).toBeDefined();
      await waitFor(async () => (await brokerOf(device.deviceId)) !== undefined, 10_000, `presence of ${device.deviceId}`, 50);
      expect(await brokerOf(device.deviceId)).toBe(2);
    }
  }, 60_000);
});

// `npm run cluster` with haproxy on PATH: the same deploy/haproxy.cfg in front of its processes, on the front ports it
// prints.
describe('npm run cluster with HAProxy', () => {
  let db: TestDatabase;
  let home: string;
  let cluster: ChildProcess;
  let output = '';
  const prefix = clusterPrefixFor('npm-cluster');

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-npm-cluster-'));
  });
  afterAll(async () => {
    if (cluster && cluster.exitCode === null && cluster.signalCode === null) {
      const exited = new Promise((resolve) => cluster.once('exit', resolve));
      cluster.kill('SIGINT');
      await exited;
    }
    await db?.drop();
    await dropClusterKeys(prefix);
    await rm(home, { recursive: true, force: true });
  });

  it('prints the front ports; the API answers /readyz and a device connects with mTLS through them', async () => {
    const front = { https: await freePort(), mqtts: await freePort() };
    const ports = async () => `${await freePort()},${await freePort()}`;
    cluster = spawn(process.execPath, [path.join(REPO_ROOT, 'server', 'scripts', 'cluster.mjs')], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        ENROLLD_HOME: home,
        LISTEN_HOST: '127.0.0.1',
        BROKER_CLUSTER_PREFIX: prefix,
        BROKER_PRESENCE_FLUSH: '50ms',
        CLUSTER_HTTPS_PORTS: await ports(),
        CLUSTER_MQTTS_PORTS: await ports(),
        CLUSTER_FRONT_HTTPS_PORT: String(front.https),
        CLUSTER_FRONT_MQTTS_PORT: String(front.mqtts),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cluster.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    cluster.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<never>((_, reject) => cluster.once('exit', (code) => reject(new Error(`npm run cluster exited (${code}):\n${output}`))));
    const announced = new Promise<void>((resolve) => {
      const onData = () => {
        if (!output.includes('cluster: HAProxy in front:')) return;
        cluster.stdout!.off('data', onData);
        resolve();
      };
      cluster.stdout!.on('data', onData);
    });
    await Promise.race([announced, exited]);
    expect(output).toContain(`cluster: HAProxy in front: https://localhost:${front.https} (APIs), mqtts://localhost:${front.mqtts} (brokers, TLS passthrough)`);

    const rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    const adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
    const frontUrl = `https://localhost:${front.https}`;
    // Until its checks pass HAProxy has no server for a connection and closes it; retry until it has one (HAProxy
    // logs only state changes, so a server up at its first check leaves no line to wait on).
    await Promise.race([
      waitFor(async () => (await httpsRequest(frontUrl + routes.readyz, rootPem).catch(() => undefined))?.status === 200, 60_000, 'the API front /readyz 200', 100),
      exited,
    ]);
    const device = await enrollThrough(frontUrl, rootPem, adminToken);
    const client = await waitForValue(async () => (await connectMqtt(front.mqtts, rootPem, device)).client, 60_000, 'a device session through the MQTT front', 100);
    // The broker behind the front recorded the identity of the certificate it read.
    await waitFor(async () => (await db.pool.query('SELECT 1 FROM device_presence WHERE device_id = $1', [device.deviceId])).rowCount === 1, 10_000, 'the broker to record the device', 50);
    client.end(true);
  }, 120_000);
});
