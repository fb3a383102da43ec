// The MQTT port under half-open connections: a TLS handshake that does not finish within the handshake timeout is
// closed by the server, and sockets not yet admitted are capped per source address and in total, while a real device
// still connects over mutual TLS. Real loopback sockets (several source addresses of 127.0.0.0/8), real Postgres.
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { createTestPki, deviceIdFor, type DeviceCert, type TestPki } from '../support/test-pki.js';
import { connectDevice, endClient, insertDevice, metricValue, percentile, report, startTestBroker, type TestBroker } from '../support/broker-harness.js';
import { waitFor } from '../support/wait-for.js';

/** The first bytes of a TLS ClientHello record: what a stalled client may have sent. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01]);

interface HalfOpen {
  socket: net.Socket;
  openedAt: number;
  /** Resolves with the close time; `byUs` is false when the server closed it. */
  closed: Promise<{ at: number; byUs: boolean }>;
  /** Closes it from this side. */
  close(): void;
}

const openFds = () => readdirSync('/proc/self/fd').length;

/** Opens `count` TCP connections from `localAddress`, `batch` at a time, each sending nothing or a partial ClientHello. */
async function openHalfOpen(port: number, localAddress: string, count: number, batch = 250): Promise<HalfOpen[]> {
  const sockets: HalfOpen[] = [];
  for (let i = 0; i < count; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port, localAddress });
      let byUs = false;
      const close = () => {
        byUs = true;
        socket.destroy();
      };
      socket.on('error', () => undefined);
      const closed = new Promise<{ at: number; byUs: boolean }>((done) => socket.once('close', () => done({ at: Date.now(), byUs })));
      socket.once('connect', () => {
        if ((i + j) % 2 === 1) socket.write(PARTIAL_CLIENT_HELLO);
        sockets.push({ socket, openedAt: Date.now(), closed, close });
        resolve();
      });
      socket.once('close', () => reject(new Error(`closed before connect from ${localAddress}`)));
    })));
  }
  return sockets;
}

describe('half-open connections on the MQTT port', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let device: DeviceCert;
  let broker: TestBroker | undefined;
  const held: HalfOpen[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pki = await createTestPki();
    device = await pki.device(deviceIdFor('half-open'));
    await insertDevice(db.pool, device);
  });
  afterEach(async () => {
    for (const h of held.splice(0)) h.close();
    await broker?.stop();
    broker = undefined;
  });
  afterAll(async () => {
    await db?.drop();
  });

  const unauthenticated = () => metricValue(broker!.registry, 'enrolld_broker_unauthenticated_connections');
  const refused = (reason: string) => metricValue(broker!.registry, 'enrolld_broker_connect_refusals_total', { reason });

  it('closes TLS handshakes that do not finish within the timeout, and a device connects while thousands are held', async () => {
    // 5,000 half-open sockets take about 10 s to open on a busy 2-core machine; the timeout leaves them all held then.
    const HANDSHAKE_MS = 15_000;
    const HALF_OPEN = 5000;
    broker = await startTestBroker(db.url, db.pool, pki, { handshakeTimeoutMs: HANDSHAKE_MS, maxPendingPerAddress: HALF_OPEN, maxPending: 2 * HALF_OPEN });
    const fdsBefore = openFds();
    const openStarted = Date.now();
    held.push(...(await openHalfOpen(broker.port, '127.0.0.2', HALF_OPEN / 2)), ...(await openHalfOpen(broker.port, '127.0.0.3', HALF_OPEN / 2)));
    const openSeconds = (Date.now() - openStarted) / 1000;

    // A real device, from another address, while the half-open sockets are held.
    const connectStarted = Date.now();
    const outcome = await connectDevice(broker.port, pki, device);
    const connectMs = Date.now() - connectStarted;
    const stillHeld = held.filter((h) => !h.socket.destroyed).length;
    const pendingOnServer = await unauthenticated();
    const fdsHeld = openFds() - fdsBefore;
    expect(outcome.ok).toBe(true);
    expect(stillHeld).toBeGreaterThan(0);

    // Every half-open socket is closed by the server's handshake timeout, none before it.
    const closes = await Promise.all(held.map(async (h) => ({ ...(await h.closed), openedAt: h.openedAt })));
    expect(closes.filter((c) => c.byUs)).toEqual([]);
    const lifetimes = closes.map((c) => c.at - c.openedAt).sort((a, b) => a - b);
    expect(lifetimes[0]).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    await waitFor(async () => (await refused('handshake-timeout')) === held.length, 5000, 'every timeout to be counted');
    await waitFor(async () => (await unauthenticated()) === 0, 5000, 'no pending socket on the server');

    // The device's session outlived them all: one round trip through the broker.
    if (!outcome.ok) throw new Error('unreachable');
    const topic = `devices/${device.deviceId}/echo`;
    await outcome.client.subscribeAsync(topic);
    const echoed = new Promise<string>((resolve) => outcome.client.once('message', (_t, payload) => resolve(payload.toString())));
    await outcome.client.publishAsync(topic, 'after');
    expect(await echoed).toBe('after');
    await endClient(outcome.client);

    report('BRK-HALF-OPEN', true, {
      halfOpen: held.length,
      openSeconds,
      halfOpenStillHeldAtConnack: stillHeld,
      pendingOnServerAtConnack: pendingOnServer,
      fdsOfTestProcessAtConnack: fdsHeld,
      fdsPerHeldHalfOpen: +(fdsHeld / stillHeld).toFixed(3),
      deviceConnectMs: connectMs,
      handshakeTimeoutMs: HANDSHAKE_MS,
      closeAfterMs: { min: lifetimes[0], p50: percentile(lifetimes, 0.5), max: lifetimes[lifetimes.length - 1] },
    });
  }, 120_000);

  it('caps sockets not yet admitted per source address and in total; admitted sessions do not count, and room comes back', async () => {
    broker = await startTestBroker(db.url, db.pool, pki, { handshakeTimeoutMs: 60_000, maxPendingPerAddress: 10, maxPending: 20 });
    const session = await connectDevice(broker.port, pki, device);
    expect(session.ok).toBe(true);
    held.push(...(await openHalfOpen(broker.port, '127.0.0.2', 10)));
    await waitFor(async () => (await unauthenticated()) === 10, 5000, 'ten pending sockets');
    // One more from the same address: closed by the server at once.
    const [overAddress] = await openHalfOpen(broker.port, '127.0.0.2', 1);
    expect((await overAddress!.closed).byUs).toBe(false);
    expect(await refused('pending-per-address')).toBe(1);
    held.push(...(await openHalfOpen(broker.port, '127.0.0.3', 10)));
    await waitFor(async () => (await unauthenticated()) === 20, 5000, 'twenty pending sockets');
    // One more from a third address: the total cap.
    const [overTotal] = await openHalfOpen(broker.port, '127.0.0.4', 1);
    expect((await overTotal!.closed).byUs).toBe(false);
    expect(await refused('pending-total')).toBe(1);
    expect(await refused('pending-per-address')).toBe(1);
    // Room comes back as soon as pending sockets go.
    for (const h of held.splice(0)) h.close();
    await waitFor(async () => (await unauthenticated()) === 0, 5000, 'no pending socket');
    if (session.ok) await endClient(session.client);
    const again = await connectDevice(broker.port, pki, device);
    expect(again.ok).toBe(true);
    if (again.ok) await endClient(again.client);
  });
});
