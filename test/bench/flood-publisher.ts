// The flooding device of `npm run bench:flood`, in its own process: QoS 0 PUBLISH packets to its own topic as fast as
// the connection takes them, for FLOOD_SECONDS, reconnecting at once whenever the broker closes it (a device without
// backoff). Reads {port, rootPem, device} as JSON from stdin; prints {written, reconnects} at the end.
import tls from 'node:tls';
import mqttPacket from 'mqtt-packet';

const input = JSON.parse(await new Promise<string>((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => (text += chunk));
  process.stdin.on('end', () => resolve(text));
})) as { port: number; rootPem: string; device: { deviceId: string; keyPem: string; chainPem: string } };
const seconds = Number(process.env.FLOOD_SECONDS ?? 10);
const { device } = input;
const BATCH = 1000;
const publish = mqttPacket.generate({ cmd: 'publish', topic: `devices/${device.deviceId}/flood`, payload: Buffer.alloc(16, 0x61), qos: 0, retain: false, dup: false });
const batch = Buffer.concat(Array.from({ length: BATCH }, () => publish));
const connect = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: device.deviceId, keepalive: 60 });
const secureContext = tls.createSecureContext({ ca: input.rootPem, key: device.keyPem, cert: device.chainPem });
const deadline = Date.now() + seconds * 1000;
let written = 0;
let reconnects = -1;

async function floodOnce(): Promise<void> {
  reconnects++;
  const socket = tls.connect({ host: '127.0.0.1', port: input.port, servername: 'localhost', secureContext });
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let open = true;
  void closed.then(() => (open = false));
  await new Promise<void>((resolve) => {
    socket.once('secureConnect', () => resolve());
    socket.once('close', () => resolve());
  });
  if (!open) return;
  socket.write(connect);
  // Write until the deadline, the close, or backpressure (then wait for drain).
  while (open && Date.now() < deadline) {
    if (socket.write(batch)) written += BATCH;
    else {
      written += BATCH;
      await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  socket.destroy();
  await closed;
}

while (Date.now() < deadline) await floodOnce();
process.stdout.write(`${JSON.stringify({ written, reconnects })}\n`);
