// The broker under test for `npm run bench:broker`, in its own process (pinned to CPU 0 by the caller).
//   BENCH_MODE=enrolld      our broker (createBroker) over the Postgres registry and revocation state, defaults as shipped,
//                           with the presence writer's hooks as every shipped broker has them (BENCH_PRESENCE=off: without,
//                           to see what presence costs a CONNECT), and the live-events relay's hooks (connections and
//                           refusals sent in batches over NOTIFY; BENCH_FLEET_EVENTS=off: without)
//   BENCH_MODE=stock-aedes  the usual way to put aedes behind mTLS, as a reference: Aedes defaults,
//                           getPeerCertificate() + a revoked-serial Set in authenticate, TLS defaults (tickets on)
//   BENCH_MODE=node-tls     the floor under any broker on Node's TLS: our listener's TLS options (no tickets, client
//                           certificate verified), no MQTT at all: each client's first bytes get a CONNACK 0, its
//                           DISCONNECT or end closes it. What Node's net/TLS sockets and OpenSSL cost per connection.
// Prints {"port":N} when listening; on SIGUSR2 forces a GC (run with --expose-gc) and prints memory; exits on SIGTERM.
// BENCH_CPU_PROFILE=<file>: a V8 CPU profile (open it in Chrome DevTools) from listening until SIGTERM, to see where a
// CONNECT's JavaScript time goes (`--cpu-prof` is not allowed in NODE_OPTIONS).
import { constants } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import tls from 'node:tls';
import { Aedes } from 'aedes';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createPool, createPgFleetEventBus, createPgPresenceStore, createPgProfileListener, createPgProfileStore, createPgRegistryListener, createPgRegistryStore, createPgRevocationStore } from '@enrolld/db';
import { systemClock } from '@enrolld/core/clock.js';
import { createPresenceWriter } from '@enrolld/core/fleet/presence.js';
import { createClusterEvents } from '@enrolld/core/fleet/cluster-events.js';
import { createFleetEvents } from '@enrolld/core/fleet/live-events.js';
import { loadConfig } from '../../server/src/config.js';
import { createBroker, defaultBrokerConfig } from '../../server/src/mqtt/broker.js';

const dir = process.env.BENCH_DIR!;
const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
const mode = process.env.BENCH_MODE ?? 'enrolld';
let connected: () => number = () => 0;
let stop: () => Promise<void> = async () => undefined;

if (mode === 'enrolld') {
  const databaseUrl = process.env.DATABASE_URL!;
  const pool = createPool({ connectionString: databaseUrl, max: 4 });
  const presence = process.env.BENCH_PRESENCE === 'off'
    ? undefined
    : createPresenceWriter({ store: createPgPresenceStore(pool), nodeId: `bench-${process.pid}`, environment: 'default', ...loadConfig({}).broker.presence });
  const fleetEvents = process.env.BENCH_FLEET_EVENTS === 'off' ? undefined : createFleetEvents();
  const relay = fleetEvents && createClusterEvents({
    bus: createPgFleetEventBus({ pool, connectionString: databaseUrl }), events: fleetEvents, origin: `bench-${process.pid}`, flushMs: 500, maxPerFlush: 400, listen: false,
  });
  const hooks = [
    ...(presence ? [{ onConnected: (s: { deviceId: string }) => presence.connected(s.deviceId), onDisconnected: (s: { deviceId: string }) => presence.disconnected(s.deviceId) }] : []),
    ...(fleetEvents
      ? [{
          onConnected: (s: { deviceId: string; serial: string }) => fleetEvents.publish({ type: 'connected', deviceId: s.deviceId, serial: s.serial, at: fleetEvents.now() }),
          onDisconnected: (s: { deviceId: string; serial: string }) => fleetEvents.publish({ type: 'disconnected', deviceId: s.deviceId, serial: s.serial, at: fleetEvents.now() }),
          onRefused: (r: { deviceId: string | null; serial: string | null; reason: string }) => fleetEvents.publish({ type: 'refused', deviceId: r.deviceId, serial: r.serial, reason: r.reason, at: fleetEvents.now() }),
        }]
      : []),
  ];
  const broker = createBroker({
    config: { ...defaultBrokerConfig, host: '127.0.0.1', port: 0 },
    tls: { key: read('server.key'), cert: read('server-chain.pem'), ca: read('ca-chain.pem'), issuingCertificate: read('issuing.pem') },
    store: { ...createPgRevocationStore(pool), ...createPgRegistryStore(pool) },
    feed: createPgRegistryListener({ connectionString: databaseUrl }),
    profiles: { source: createPgProfileStore(pool), feed: createPgProfileListener({ connectionString: databaseUrl }) },
    hooks,
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  const { port } = await broker.start();
  await presence?.start();
  await relay?.start();
  connected = () => broker.connectedDevices();
  stop = async () => {
    await presence?.stop();
    await broker.stop();
    await relay?.stop();
    await pool.end();
  };
  process.stdout.write(`${JSON.stringify({ port })}\n`);
} else if (mode === 'node-tls') {
  const connack = Buffer.from([0x20, 0x02, 0x00, 0x00]);
  const server = tls.createServer(
    { key: read('server.key'), cert: read('server-chain.pem'), ca: read('ca-chain.pem'), requestCert: true, rejectUnauthorized: true, noDelay: true, secureOptions: constants.SSL_OP_NO_TICKET },
    (socket) => {
      socket.on('error', () => socket.destroy());
      socket.once('data', () => socket.write(connack));
      socket.on('end', () => socket.end());
    },
  );
  // As our listener does (tls-listener.ts): the chain may end at the issuing CA, one signature check per handshake.
  (server as unknown as { _sharedCreds: { context: { setAllowPartialTrustChain(): void } } })._sharedCreds.context.setAllowPartialTrustChain();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stop = async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
} else {
  const revokedSerials = new Set(['DEADBEEF']);
  const aedes = await Aedes.createBroker({
    authenticate(client, _username, _password, done) {
      const peer = (client.conn as tls.TLSSocket).getPeerCertificate?.();
      if (!peer || !peer.serialNumber) return done(null, false);
      if (revokedSerials.has(peer.serialNumber)) return done(null, false);
      done(null, true);
    },
  });
  const server = tls.createServer(
    { key: read('server.key'), cert: read('server-chain.pem'), ca: read('ca-chain.pem'), requestCert: true, rejectUnauthorized: true, noDelay: true },
    (socket) => aedes.handle(socket),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  connected = () => aedes.connectedClients;
  stop = async () => {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
}

const profileFile = process.env.BENCH_CPU_PROFILE;
const profiler = profileFile ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.setSamplingInterval', { interval: 250 });
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}

process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ memory: { rss: m.rss, heapUsed: m.heapUsed, external: m.external, connected: connected() } })}\n`);
});
process.once('SIGTERM', () => {
  const saveProfile = async () => {
    if (!profiler || !profileFile) return;
    const { profile } = await profiler.post('Profiler.stop');
    writeFileSync(profileFile, JSON.stringify(profile));
  };
  void saveProfile().then(stop).finally(() => process.exit(0));
});
setTimeout(() => process.exit(3), 20 * 60_000).unref(); // hard lifetime bound
