// Helpers for the broker tests: a broker on port 0 over a real Postgres, device rows, real MQTT.js clients and a
// raw MQTT-over-TLS probe that tells a TLS refusal from a CONNACK refusal. The broker hears revocations and issuance as
// `enrolld up` wires it: the Postgres NOTIFY feed merged with the in-process revocation feed, which a revocation
// service may publish to. A device row inserted by a test reaches it by NOTIFY, or by the lookup of an unknown serial.
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import type pg from 'pg';
import { Redis } from 'ioredis';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { createPgProfileListener, createPgProfileStore, createPgRegistryListener, createPgRegistryStore, createPgRevocationStore } from '@enrolld/db';
import { systemClock } from '@enrolld/core/clock.js';
import { createLocalRevocationFeed, type LocalRevocationFeed } from '@enrolld/core/events/local-revocation-feed.js';
import { mergeRevocationFeeds } from '@enrolld/core/events/merge-feeds.js';
import type { RevocationPublisher } from '@enrolld/core/revocation/ports.js';
import { createRevocationService } from '@enrolld/core/revocation/revocation-service.js';
import { createBroker, defaultBrokerConfig, type BrokerConfig, type LimitsFor } from '../../server/src/mqtt/broker.js';
import { createClusterBus } from '../../server/src/mqtt/cluster-bus.js';
import { deviceIdFor, type DeviceCert, type TestPki } from './test-pki.js';

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A cluster prefix no other test (or engineer) shares: channels and keys of one test stay apart on a shared Redis. */
export function clusterPrefixFor(name: string): string {
  return `test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes what a test cluster left in Redis (sessions, retained messages, wills) under its prefix. */
export async function dropClusterKeys(prefix: string, redisUrl = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

export interface TestBroker {
  broker: ReturnType<typeof createBroker>;
  port: number;
  registry: Registry;
  /** The in-process path: pass it to revocationServiceFor to cut without waiting for NOTIFY. */
  revocations: LocalRevocationFeed;
  stop(): Promise<void>;
}

export async function startTestBroker(
  databaseUrl: string,
  pool: pg.Pool,
  pki: TestPki,
  overrides: Partial<BrokerConfig> & { persistence?: unknown; logger?: Logger; limitsFor?: LimitsFor; cluster?: { prefix: string; redisUrl?: string } } = {},
): Promise<TestBroker> {
  const { persistence, logger, limitsFor, cluster, ...config } = overrides;
  const registry = new Registry();
  const log = logger ?? pino({ level: process.env.BROKER_TEST_LOG ?? 'silent' });
  const revocations = createLocalRevocationFeed();
  const broker = createBroker({
    config: { ...defaultBrokerConfig, host: '127.0.0.1', port: 0, resyncIntervalMs: 1000, maxStalenessMs: 10_000, ...config },
    tls: {
      key: pki.server.keyPem,
      cert: pki.server.chainPem,
      ca: pki.caChainPem,
      issuingCertificate: pki.issuing.certPem,
    },
    store: { ...createPgRevocationStore(pool), ...createPgRegistryStore(pool) },
    feed: mergeRevocationFeeds(createPgRegistryListener({ connectionString: databaseUrl, reconnectDelayMs: 200 }), revocations),
    profiles: { source: createPgProfileStore(pool), feed: createPgProfileListener({ connectionString: databaseUrl, reconnectDelayMs: 200 }) },
    clock: systemClock,
    logger: log,
    registry,
    limitsFor,
    ...(persistence ? { persistence } : {}),
    ...(cluster ? { cluster: createClusterBus({ redisUrl: cluster.redisUrl ?? TEST_REDIS_URL, prefix: cluster.prefix, logger: log, registry }) } : {}),
  });
  const { port } = await broker.start();
  return { broker, port, registry, revocations, stop: () => broker.stop() };
}

export function revocationServiceFor(pool: pg.Pool, pki: TestPki, publisher?: RevocationPublisher) {
  return createRevocationService({
    store: createPgRevocationStore(pool),
    signer: pki.issuing,
    clock: systemClock,
    crlValidityMs: 7 * 24 * 3600_000,
    crlMinIntervalMs: 1000,
    publisher,
  });
}

/** Records a device and its certificate the way enrollment would have (schema v1). */
export async function insertDevice(pool: pg.Pool, device: DeviceCert): Promise<void> {
  await pool.query('INSERT INTO devices (id) VALUES ($1) ON CONFLICT DO NOTHING', [device.deviceId]);
  await pool.query(
    `INSERT INTO certificates (serial, device_id, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at)
     VALUES ($1, $2, $3, $3, $4, $4, $5, $6, now())`,
    [device.serial, device.deviceId, randomBytes(32), device.der, device.notBefore, device.notAfter],
  );
}

/** A new device certificate (id from `prefix`), recorded as enrollment would. */
export async function recordedDevice(pool: pg.Pool, pki: TestPki, prefix: string): Promise<DeviceCert> {
  const device = await pki.device(deviceIdFor(prefix));
  await insertDevice(pool, device);
  return device;
}

export interface ConnectOptions {
  clientId?: string;
  username?: string;
  clean?: boolean;
  will?: IClientOptions['will'];
  /** Send only the leaf (default: leaf + issuing CA, as a real device does). */
  leafOnly?: boolean;
  session?: Buffer;
}

export type ConnectOutcome =
  | { ok: true; client: MqttClient }
  | { ok: false; code?: number | undefined; error: string };

/** Connects with MQTT.js (3.1.1). Resolves with the client on CONNACK 0, or with the refusal. */
export function connectDevice(
  port: number,
  pki: Pick<TestPki, 'caChainPem'>,
  device: Pick<DeviceCert, 'deviceId' | 'keyPem' | 'certPem' | 'chainPem'>,
  options: ConnectOptions = {},
): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: pki.caChainPem,
      key: device.keyPem,
      cert: options.leafOnly ? device.certPem : device.chainPem,
      clientId: options.clientId ?? device.deviceId,
      ...(options.username !== undefined ? { username: options.username } : {}),
      protocolVersion: 4,
      clean: options.clean ?? true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...(options.will ? { will: options.will } : {}),
    });
    let settled = false;
    client.once('connect', () => {
      settled = true;
      resolve({ ok: true, client });
    });
    client.once('error', (error: Error & { code?: number | string }) => {
      if (settled) return;
      settled = true;
      client.end(true);
      resolve({ ok: false, code: typeof error.code === 'number' ? error.code : undefined, error: String(error.code ?? error.message) });
    });
    client.once('close', () => {
      if (settled) return;
      settled = true;
      client.end(true);
      resolve({ ok: false, error: 'closed before CONNACK' });
    });
  });
}

/** Connects, or throws with the refusal. */
export async function mustConnectDevice(
  port: number,
  pki: Pick<TestPki, 'caChainPem'>,
  device: Pick<DeviceCert, 'deviceId' | 'keyPem' | 'certPem' | 'chainPem'>,
  options: ConnectOptions = {},
): Promise<MqttClient> {
  const outcome = await connectDevice(port, pki, device, options);
  if (!outcome.ok) throw new Error(`connect refused: ${outcome.error}`);
  return outcome.client;
}

export function endClient(client: MqttClient): Promise<void> {
  return new Promise((resolve) => client.end(true, {}, () => resolve()));
}

/** Minimal MQTT 3.1.1 CONNECT (clean session, keepalive 60 s). */
export function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const vh = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c]);
  const rem = vh.length + 2 + id.length;
  return Buffer.concat([Buffer.from([0x10, rem]), vh, Buffer.from([id.length >> 8, id.length & 255]), id]);
}

export type ProbeOutcome =
  | { kind: 'connack'; code: number; resumed: boolean; session?: Buffer | undefined }
  | { kind: 'tls-refused'; error: string };

/**
 * One raw MQTT-over-TLS attempt. In TLS 1.3 the client finishes its handshake before the server has checked the
 * client certificate, so a refusal shows up as an alert or a close after CONNECT was sent.
 */
export function probe(
  port: number,
  creds: { key: string; cert: string; ca: string },
  clientId: string,
  options: { session?: Buffer | undefined; timeoutMs?: number } = {},
): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let session: Buffer | undefined;
    let done = false;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: creds.ca,
      key: creds.key,
      cert: creds.cert,
      ...(options.session ? { session: options.session } : {}),
    });
    const finish = (outcome: ProbeOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'tls-refused', error: 'timeout' }), options.timeoutMs ?? 5000);
    socket.on('session', (s: Buffer) => {
      session = s;
    });
    socket.once('secureConnect', () => socket.write(connectPacket(clientId)));
    let connack: ProbeOutcome | undefined;
    socket.on('data', (data: Buffer) => {
      if (data[0] === 0x20 && data.length >= 4 && !connack) {
        connack = { kind: 'connack', code: data[3]!, resumed: socket.isSessionReused(), session };
        // Give the TLS 1.3 ticket a moment to arrive after the CONNACK (a refusal closes right after it).
        setTimeout(() => finish(connack!.kind === 'connack' ? { ...connack!, session } : connack!), 30);
      }
    });
    socket.once('error', (error: Error & { code?: string }) => finish(connack ?? { kind: 'tls-refused', error: error.code ?? error.message }));
    socket.once('close', () => finish(connack ? { ...connack, ...(connack.kind === 'connack' ? { session } : {}) } : { kind: 'tls-refused', error: 'closed' }));
  });
}

export function deviceCreds(pki: TestPki, device: DeviceCert): { key: string; cert: string; ca: string } {
  return { key: device.keyPem, cert: device.chainPem, ca: pki.caChainPem };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** One JSON line per test result, `{id, pass, figures}`: the figures behind each requirement id, for the run report. */
export function report(id: string, pass: boolean, figures: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ id, pass, figures })}\n`);
}

/** Resolves with the promise's value, or `fallback` after `ms`; the timer never outlives the race. */
export async function raceTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => { timer = setTimeout(() => resolve(fallback), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** The current value of a metric on the registry (a counter or gauge; with labels, the matching series; 0 when absent). */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want));
  return match?.value ?? 0;
}
