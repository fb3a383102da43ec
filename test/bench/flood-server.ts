// The server under test for `npm run bench:flood`: `enrolld up` (startTestServer: its own database, port 0) in its own
// process, with the broker settings given in the environment, and `BENCH_DEVICES` devices enrolled through the API.
// Prints one JSON line {apiUrl, mqttsPort, rootPem, adminToken, devices:[{deviceId, keyPem, chainPem}]} when ready;
// on SIGUSR2 collects garbage (run with --expose-gc) and prints {memory}; stops on SIGTERM.
import { startTestServer } from '../support/server-harness.js';
import { enrollDevice } from '../support/renew-support.js';

const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('BROKER_'))) as Record<string, string>;
const server = await startTestServer({ env });
const count = Number(process.env.BENCH_DEVICES ?? 2);
const devices = [];
for (let i = 0; i < count; i++) {
  const creds = await enrollDevice(server, `flood-${i}-${process.pid}`);
  devices.push({ deviceId: creds.deviceId, keyPem: creds.keyPem, chainPem: creds.clientChainPem });
}

function memory() {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rssMiB: m.rss / 2 ** 20, heapUsedMiB: m.heapUsed / 2 ** 20, heapTotalMiB: m.heapTotal / 2 ** 20, externalMiB: m.external / 2 ** 20, arrayBuffersMiB: m.arrayBuffers / 2 ** 20, gc: gc !== undefined };
}

process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ memory: memory() })}\n`));
process.on('SIGTERM', () => {
  server.stop().then(() => process.exit(0), () => process.exit(1));
});
process.stdout.write(`${JSON.stringify({ apiUrl: server.apiUrl, mqttsPort: server.running.mqttsPort, rootPem: server.rootPem, adminToken: server.adminToken, devices })}\n`);
