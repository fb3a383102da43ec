// MQTT byte streams into the broker as an enrolled device: a broker over its own Postgres database, the device
// `fuzz-device` in its registry. Each execution writes CONNECT/PUBLISH/SUBSCRIBE… bytes (mutated seeds, or packets
// generated from fields) and then a PINGREQ. A stream that parses into whole packets must end in a PINGRESP or a close
// within the hang limit; a stream that stops mid-packet is left for the broker's timeouts. Crashes are exceptions
// escaping anywhere in the process; every 1000 executions a second device's ping must be answered over mutual TLS
// (the broker's event loop is alive) and, once the fuzz device's connections are all let go, the broker must hold no
// session of its certificate (a session indexed for a connection that closed is never freed).
// Transport: what is fuzzed is the MQTT byte stream, not TLS, whose bytes are the same for every execution. So most
// executions hand the broker an in-process stream (broker.handleConnection, the function its TLS listener calls for
// each accepted socket) that carries the TLS session of a real mutual-TLS connection of the fuzz device: admission
// reads the identity from that session as it does on the wire. One input in IN_TLS_ONE_IN (chosen by the input's
// hash, so a finding replays the same way) goes over a real mutual-TLS connection with resumption instead. The
// in-process path costs a fraction of a handshake, so a run of 10^6 executions fits in well under an hour.
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import fc from 'fast-check';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { pino } from 'pino';
import { defaultConnectionLimits } from '../../../server/src/mqtt/limits.js';
import { insertDevice, startTestBroker } from '../../support/broker-harness.js';
import { brokerTlsSessionOf, connectInProcess } from '../../support/in-process-mqtt.js';
import { createTestDatabase } from '../../support/pg.js';
import { rawConnect } from '../../support/raw-mqtt.js';
import { createTestPki } from '../../support/test-pki.js';
import { HANG_MS, Hang, type FuzzTarget } from '../engine.js';
import { mutatedInputs } from '../mutate.js';

/** The identity every seed's CONNECT names. */
export const FUZZ_DEVICE = 'fuzz-device';
const PINGREQ = Buffer.from([0xc0, 0x00]);

/**
 * Whether the bytes end on a packet boundary by their fixed headers (MQTT 3.1.1 §2.2); a malformed Remaining Length
 * counts as one: the broker closes the connection on it.
 */
function endsOnPacketBoundary(bytes: Buffer): boolean {
  let at = 0;
  while (at < bytes.length) {
    let length = 0;
    let multiplier = 1;
    let i = at + 1;
    for (;;) {
      if (i >= bytes.length) return false;
      const byte = bytes[i++]!;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
      if ((byte & 0x80) === 0) break;
      if (i - at > 4) return true;
    }
    at = i + length;
  }
  return at === bytes.length;
}

const topicOf = fc.oneof(
  fc.string({ maxLength: 24 }).map((s) => `devices/${FUZZ_DEVICE}/${s}`),
  fc.constantFrom(`devices/${FUZZ_DEVICE}/#`, `devices/${FUZZ_DEVICE}/+/x`, 'devices/other/x', '#', '$SYS/x', '+', 'devices/+/state', ''),
  fc.string({ maxLength: 40 }),
);
const messageId = fc.integer({ min: 0, max: 65535 });
const qos = fc.constantFrom(0, 1, 2) as fc.Arbitrary<0 | 1 | 2>;
const packetArb: fc.Arbitrary<Packet> = fc.oneof(
  fc.record({ cmd: fc.constant('publish' as const), topic: topicOf, payload: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)), qos, messageId, retain: fc.boolean(), dup: fc.boolean() }),
  fc.record({ cmd: fc.constant('subscribe' as const), messageId, subscriptions: fc.array(fc.record({ topic: topicOf, qos }), { minLength: 1, maxLength: 6 }) }),
  fc.record({ cmd: fc.constant('unsubscribe' as const), messageId, unsubscriptions: fc.array(topicOf, { minLength: 1, maxLength: 4 }) }),
  fc.record({ cmd: fc.constantFrom('puback' as const, 'pubrec' as const, 'pubrel' as const, 'pubcomp' as const), messageId }),
  fc.record({ cmd: fc.constantFrom('pingreq' as const, 'disconnect' as const) }),
) as fc.Arbitrary<Packet>;
const connectArb = fc.record({
  clean: fc.boolean(),
  keepalive: fc.integer({ min: 0, max: 65535 }),
  will: fc.option(fc.record({ topic: topicOf, payload: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), qos, retain: fc.boolean() }), { nil: undefined }),
  username: fc.option(fc.constantFrom(FUZZ_DEVICE, 'someone-else', ''), { nil: undefined }),
});

/**
 * The packet's bytes, or undefined for a field combination mqtt-packet will not encode (an empty will topic…); the
 * byte mutations reach those. (mqtt-packet's generate() reports such a packet by an 'error' event nobody listens to.)
 */
function encode(packet: Packet): Buffer | undefined {
  const chunks: Buffer[] = [];
  let refused = false;
  const sink = {
    write(chunk: Buffer | string) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      return true;
    },
    destroy() {
      refused = true;
    },
  };
  mqttPacket.writeToStream(packet, sink as unknown as Parameters<typeof mqttPacket.writeToStream>[1]);
  return refused ? undefined : Buffer.concat(chunks);
}

/** A CONNECT of the fuzz device, then packets generated from fields. */
const generatedStreams: fc.Arbitrary<Uint8Array> = fc.tuple(connectArb, fc.array(packetArb, { maxLength: 10 })).map(([connect, packets]) => {
  const first = { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: FUZZ_DEVICE, ...connect } as Packet;
  const parts = [first, ...packets].map(encode).filter((bytes): bytes is Buffer => bytes !== undefined);
  return Buffer.concat(parts);
});

/** One input in this many goes over a real mutual-TLS connection. */
const IN_TLS_ONE_IN = 64;

function overTls(input: Uint8Array): boolean {
  return createHash('sha256').update(input).digest().readUInt32BE(0) % IN_TLS_ONE_IN === 0;
}

export const mqttTarget: FuzzTarget = {
  name: 'mqtt',
  inputs: (seeds) => fc.oneof({ weight: 3, arbitrary: mutatedInputs(seeds, { maxRandomBytes: 128 }) }, { weight: 2, arbitrary: generatedStreams }),
  async setup() {
    const db = await createTestDatabase();
    const pki = await createTestPki();
    const device = await pki.device(FUZZ_DEVICE);
    const health = await pki.device('fuzz-health');
    await insertDevice(db.pool, device);
    await insertDevice(db.pool, health);
    const broker = await startTestBroker(db.url, db.pool, pki, {
      sessionTickets: true,
      // The shipped limits, but a publish rate whose waits stay far below the hang limit, and a CONNECT rate for one
      // identity that connects once per execution (the shipped one would hold each refusal up to a second).
      limits: { ...defaultConnectionLimits, publishRatePerSecond: 1e6, publishBurst: 1000, connectRatePerSecond: 1e6, connectBurst: 1e6 },
      logger: pino({ level: 'silent' }),
    });
    const tlsSession = await brokerTlsSessionOf(broker.broker, broker.port, pki, device);
    const healthClient = await rawConnect(broker.port, pki, health);
    let session: Buffer | undefined;
    // One client context for all TLS executions: building it per connection costs more than the handshake.
    const secureContext = tls.createSecureContext({ ca: pki.caChainPem, key: device.keyPem, cert: device.chainPem });

    /** The device's end of a new connection, once the broker has it, and (in process) the close of the broker's end. */
    async function connect(input: Uint8Array): Promise<{ connection: Duplex; brokerClosed?: Promise<void> }> {
      if (!overTls(input)) {
        const { device: connection, brokerClosed } = connectInProcess(broker.broker, tlsSession);
        return { connection, brokerClosed };
      }
      const socket = tls.connect({ host: '127.0.0.1', port: broker.port, servername: 'localhost', secureContext, ...(session ? { session } : {}) });
      socket.setNoDelay(true);
      socket.on('session', (s: Buffer) => {
        session = s;
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('close', () => reject(new Error('the broker closed the TLS connection of an enrolled device before any MQTT byte')));
      });
      return { connection: socket };
    }

    /**
     * Ends the execution's connection and waits until the broker has let it go: in process, the close of its end; over
     * TLS, the broker's own close after our FIN. Then, once aedes' CONNECT handling queued before that has run (it
     * authenticates a macrotask after the parse), no session of the device may be left.
     */
    async function end(connection: Duplex, brokerClosed: Promise<void> | undefined): Promise<void> {
      if (brokerClosed) {
        connection.destroy();
        await brokerClosed;
      } else if (!connection.destroyed) {
        const closed = new Promise<void>((resolve) => connection.once('close', () => resolve()));
        connection.end();
        let timer: NodeJS.Timeout | undefined;
        const gone = await Promise.race([closed.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), HANG_MS)))]);
        clearTimeout(timer);
        connection.destroy();
        if (!gone) throw new Hang(HANG_MS, 'the broker closing a connection whose device ended it');
      }
      await new Promise((resolve) => setImmediate(resolve));
      if (broker.broker.hasSession(device.serial)) throw new Error('the broker holds a session of a connection that closed');
    }

    return {
      async execute(input) {
        // Only after an input that ends on a packet boundary is the PINGREQ a packet of its own.
        const whole = endsOnPacketBoundary(Buffer.from(input));
        const bytes = Buffer.concat([input, PINGREQ]);
        const { connection, brokerClosed } = await connect(input);
        connection.on('error', () => undefined);
        const answered = new Promise<'answered' | 'closed'>((resolve) => {
          const parser = mqttPacket.parser({ protocolVersion: 4 });
          parser.on('packet', (packet: Packet) => packet.cmd === 'pingresp' && resolve('answered'));
          parser.on('error', () => undefined);
          connection.on('data', (chunk: Buffer) => parser.parse(chunk));
          connection.once('close', () => resolve('closed'));
        });
        if (!whole) {
          await new Promise<void>((resolve) => connection.write(bytes, () => resolve()));
          return end(connection, brokerClosed);
        }
        connection.write(bytes);
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([answered, new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), HANG_MS)))]);
        clearTimeout(timer);
        if (outcome === 'silent') {
          connection.destroy();
          throw new Hang(HANG_MS, 'a whole MQTT stream with no PINGRESP and no close');
        }
        await end(connection, brokerClosed);
      },
      async healthy() {
        healthClient.send({ cmd: 'pingreq' });
        let timer: NodeJS.Timeout | undefined;
        const answered = await Promise.race([
          healthClient.next('pingresp').then(() => true, () => false),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), HANG_MS))),
        ]);
        clearTimeout(timer);
        if (!answered) throw new Hang(HANG_MS, 'the health device\'s ping');
        // Every connection of the fuzz device was closed by its execution: once aedes has let them go, the broker must
        // hold no session of its certificate (a leaked one would count as connected and never be freed).
        const deadline = performance.now() + HANG_MS;
        while (broker.broker.connectedDevices() > 1) {
          if (performance.now() > deadline) throw new Hang(HANG_MS, 'the closed connections of the fuzz device to be let go');
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        if (broker.broker.hasSession(device.serial)) throw new Error('the broker still holds a session of a connection that closed');
      },
      async stop() {
        healthClient.end();
        await broker.stop();
        await db.drop();
      },
    };
  },
};
