// The broker's TLS listener alone in a process of its own, so a test can start it with the process-wide OpenSSL settings
// a broker is deployed with (node --openssl-config=…). Reads server.key, server-chain.pem, ca-chain.pem and issuing.pem
// from LISTENER_DIR, prints {"port":N} once listening, and answers each accepted device with one byte of application
// data and a close, so the client has read everything the handshake sent by the time the connection ends.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createBrokerMetrics } from '../../server/src/mqtt/broker-metrics.js';
import { createPeerIdentityReader } from '../../server/src/mqtt/peer-identity.js';
import { createTlsListener } from '../../server/src/mqtt/tls-listener.js';

const dir = process.env.LISTENER_DIR!;
const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
const material = { key: read('server.key'), cert: read('server-chain.pem'), ca: read('ca-chain.pem'), issuingCertificate: read('issuing.pem') };
const listener = createTlsListener(
  material,
  { host: '127.0.0.1', port: 0, sessionTickets: false, ticketKeys: Buffer.alloc(48), handshakeTimeoutMs: 10_000, maxPendingPerAddress: 16, maxPending: 64 },
  { log: pino({ level: 'silent' }), metrics: createBrokerMetrics(new Registry(), { connectedDevices: () => 0, unauthenticatedConnections: () => 0 }), identities: createPeerIdentityReader({ issuer: material.issuingCertificate }) },
);
const port = await listener.listen((socket) => {
  socket.on('error', () => undefined);
  socket.end('!');
});
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.once('SIGTERM', () => {
  listener.destroySockets();
  void listener.stopListening().then(() => process.exit(0));
});
