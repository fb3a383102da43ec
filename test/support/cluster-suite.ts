// The setup every broker-cluster suite shares: one test database with its PKI and a current CRL, a redis-server of the
// suite's own when it must break or reconfigure Redis (never the shared one), and the brokers and MQTT clients a test
// started, all stopped after each test. Call it inside `describe`: it registers the hooks. `db`, `pki` and `redis` are
// set once the suite's first hook has run.
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import type { PublishPacket } from 'aedes';
import type { MqttClient } from 'mqtt';
import { endClient, mustConnectDevice, recordedDevice, revocationServiceFor, type ConnectOptions, type TestBroker } from './broker-harness.js';
import { createTestDatabase, type TestDatabase } from './pg.js';
import { startTestRedisServer, type TestRedisServer } from './redis-server.js';
import { createTestPki, type DeviceCert, type TestPki } from './test-pki.js';

export interface ClusterSuite {
  db: TestDatabase;
  pki: TestPki;
  /** Only with `ownRedis`. */
  redis: TestRedisServer;
  /** Brokers a test started: stopped after it. */
  running: TestBroker[];
  /** MQTT clients a test connected: ended after it. */
  clients: MqttClient[];
  /** A device recorded in the database, with its certificate. */
  newDevice(prefix: string): Promise<DeviceCert>;
  /** A device connected to a node (CONNACK 0 or it throws): ended after the test. */
  connected(node: TestBroker, device: DeviceCert, options?: ConnectOptions): Promise<MqttClient>;
}

export function clusterSuite(options: { ownRedis?: boolean; afterEach?: () => Promise<unknown> } = {}): ClusterSuite {
  const suite = {
    running: [] as TestBroker[],
    clients: [] as MqttClient[],
    newDevice: (prefix: string) => recordedDevice(suite.db.pool, suite.pki, prefix),
    async connected(node: TestBroker, device: DeviceCert, connectOptions: ConnectOptions = {}) {
      const client = await mustConnectDevice(node.port, suite.pki, device, connectOptions);
      suite.clients.push(client);
      return client;
    },
  } as ClusterSuite;

  beforeAll(async () => {
    suite.db = await createTestDatabase();
    suite.pki = await createTestPki();
    await revocationServiceFor(suite.db.pool, suite.pki).ensureCrlCurrent();
    if (options.ownRedis) suite.redis = await startTestRedisServer();
  });
  afterEach(async () => {
    await Promise.all(suite.clients.splice(0).map((c) => endClient(c)));
    await Promise.all(suite.running.splice(0).map((b) => b.stop()));
    await options.afterEach?.();
  });
  afterAll(async () => {
    await suite.redis?.stop();
    await suite.db?.drop();
  });
  return suite;
}

/** A service on a node: a server-side listener on its emitter, receiving what a subscriber there would. */
export function listen(node: TestBroker, topic: string): Promise<{ received: PublishPacket[] }> {
  const received: PublishPacket[] = [];
  return new Promise((resolve) => {
    node.broker.aedes()!.subscribe(topic, (packet: PublishPacket, done: () => void) => {
      received.push(packet);
      done();
    }, () => resolve({ received }));
  });
}
