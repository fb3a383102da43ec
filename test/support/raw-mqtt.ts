// A raw MQTT 3.1.1 client over mutual TLS for the broker tests and fuzz targets: it writes any bytes, parses what the
// broker answers (mqtt-packet), and reports the close, so a test can send what MQTT.js never would (QoS 2 without
// PUBREL, a packet larger than the limit) and wait on the broker's answer.
import tls from 'node:tls';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { DeviceCert, TestPki } from './test-pki.js';

export interface RawMqtt {
  socket: tls.TLSSocket;
  /** Packets received so far. */
  received: Packet[];
  /** Resolves with the next received packet of this command (or of any, without one). */
  next(cmd?: Packet['cmd']): Promise<Packet>;
  /** Resolves when the connection closed. */
  closed: Promise<void>;
  send(packet: Packet): void;
  write(bytes: Buffer): void;
  end(): void;
}

export async function rawConnect(
  port: number,
  pki: Pick<TestPki, 'caChainPem'>,
  device: Pick<DeviceCert, 'deviceId' | 'keyPem' | 'chainPem'>,
  options: { connect?: boolean; session?: Buffer | undefined } = {},
): Promise<RawMqtt> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pki.caChainPem,
    key: device.keyPem,
    cert: device.chainPem,
    ...(options.session ? { session: options.session } : {}),
  });
  socket.setNoDelay(true);
  const received: Packet[] = [];
  const waiters: Array<{ cmd: Packet['cmd'] | undefined; resolve(p: Packet): void; reject(e: Error): void; from: number }> = [];
  let cursor = 0;
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (packet: Packet) => {
    received.push(packet);
    for (const waiter of [...waiters]) {
      const found = received.slice(waiter.from).find((p) => waiter.cmd === undefined || p.cmd === waiter.cmd);
      if (found) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  });
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => {
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`connection closed while waiting for ${waiter.cmd ?? 'a packet'}`));
    resolve();
  }));
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  const raw: RawMqtt = {
    socket,
    received,
    next(cmd) {
      const from = cursor;
      const index = received.slice(from).findIndex((p) => cmd === undefined || p.cmd === cmd);
      if (index >= 0) {
        cursor = from + index + 1;
        return Promise.resolve(received[from + index]!);
      }
      if (socket.destroyed) return Promise.reject(new Error(`connection closed while waiting for ${cmd ?? 'a packet'}`));
      return new Promise<Packet>((resolve, reject) => waiters.push({
        cmd,
        from,
        resolve: (p) => {
          cursor = received.indexOf(p) + 1;
          resolve(p);
        },
        reject,
      }));
    },
    closed,
    send(packet) {
      socket.write(mqttPacket.generate(packet));
    },
    write(bytes) {
      socket.write(bytes);
    },
    end() {
      socket.destroy();
    },
  };
  if (options.connect ?? true) {
    raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: device.deviceId, keepalive: 60 });
    const connack = await raw.next('connack');
    if (connack.cmd !== 'connack' || connack.returnCode !== 0) throw new Error(`CONNECT refused: ${JSON.stringify(connack)}`);
  }
  return raw;
}
