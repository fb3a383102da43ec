// The aedes internals the broker relies on (server/src/mqtt/aedes-internals.ts), checked on the installed aedes and its
// default in-memory persistence. A failure here after an aedes upgrade means aedes-internals.ts must be re-read against
// the new aedes source before AEDES_VERSION_RELIED_ON is moved.
import { afterEach, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net, { type AddressInfo } from 'node:net';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import {
  AEDES_VERSION_RELIED_ON,
  aedesMemoryPersistence,
  assignMessageId,
  createMemoryPersistence,
  createQuietAedes,
  deliverClaimed,
  deliveredQoS,
  dropClientWill,
  inboundAwaitingRelease,
  inspectIncomingBytes,
  isFirstDelivery,
  leftOverWill,
  observeIncomingPackets,
  sessionPersistence,
  stampWillSerial,
  willUnderAuthentication,
  wrapDeliveries,
  type Deliver,
} from '../../server/src/mqtt/aedes-internals.js';
import { waitFor } from '../support/wait-for.js';

const require = createRequire(import.meta.url);

function installedAedesVersion(): string {
  const main = require.resolve('aedes');
  const manifest = main.slice(0, main.lastIndexOf('/node_modules/aedes/') + '/node_modules/aedes/'.length) + 'package.json';
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function started(broker: Aedes): Promise<Aedes> {
  await broker.listen();
  cleanups.push(() => new Promise<void>((resolve) => broker.close(() => resolve())));
  return broker;
}

/** The broker behind a plain TCP listener (the internals do not depend on TLS). */
async function serve(broker: Aedes): Promise<number> {
  const server = net.createServer((socket) => broker.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

function connect(port: number, clientId: string, will?: mqtt.IClientOptions['will'], clean = true): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect({ host: '127.0.0.1', port, clientId, clean, protocolVersion: 4, reconnectPeriod: 0, ...(will ? { will } : {}) });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

function once<T extends unknown[]>(emitter: { once(event: string, listener: (...args: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}

describe('aedes internals', () => {
  it('the installed aedes is the version the internals were written for', () => {
    expect(installedAedesVersion()).toBe(AEDES_VERSION_RELIED_ON);
  });

  it('the broker methods QuietAedes overrides and calls exist with the same arity', () => {
    const proto = Aedes.prototype as unknown as Record<string, unknown>;
    for (const name of ['_finishRegisterClient', 'unregisterClient', 'deleteClient']) {
      expect(typeof proto[name]).toBe('function');
      expect((proto[name] as (...args: unknown[]) => unknown).length).toBe(1);
    }
  });

  it('a broker keeps `clients` by id and counts `connectedClients`', async () => {
    const broker = await started(new Aedes());
    const fields = broker as unknown as { clients: unknown; connectedClients: unknown };
    expect(typeof fields.clients).toBe('object');
    expect(fields.clients).not.toBeNull();
    expect(fields.connectedClients).toBe(0);
  });

  it('QuietAedes registers and unregisters clients as aedes does, without the $SYS client publishes', async () => {
    const broker = await started(createQuietAedes({}));
    const port = await serve(broker);
    const sysTopics: string[] = [];
    broker.on('publish', (packet: PublishPacket) => {
      if (packet.topic.startsWith('$SYS/') && packet.topic.endsWith('/clients')) sysTopics.push(packet.topic);
    });
    const registered = once<[Client]>(broker, 'client');
    const device = await connect(port, 'dev-1');
    const [client] = await registered;
    const fields = broker as unknown as { clients: Record<string, Client>; connectedClients: number };
    expect(client.id).toBe('dev-1');
    expect(fields.clients['dev-1']).toBe(client);
    expect(broker.connectedClients).toBe(1);

    const unregistered = once<[Client]>(broker, 'clientDisconnect');
    device.end(true);
    const [gone] = await unregistered;
    expect(gone).toBe(client);
    expect(fields.clients['dev-1']).toBeUndefined();
    expect(broker.connectedClients).toBe(0);
    expect(sysTopics).toEqual([]);
  });

  it('the will of a CONNECT is in `_will` during authenticate, and a dropped will is not published on an ungraceful close', async () => {
    let seenAtAuthentication: PublishPacket | null = null;
    const broker = await started(
      createQuietAedes({
        authenticate(client, _username, _password, done) {
          seenAtAuthentication = willUnderAuthentication(client);
          done(null, true);
        },
      }),
    );
    const port = await serve(broker);
    const published: string[] = [];
    broker.on('publish', (packet: PublishPacket) => published.push(packet.topic));
    const ready = once<[Client]>(broker, 'clientReady');
    const device = await connect(port, 'dev-2', { topic: 'devices/dev-2/status', payload: Buffer.from('gone'), qos: 0, retain: false });
    const [client] = await ready;
    expect(seenAtAuthentication).toMatchObject({ topic: 'devices/dev-2/status' });
    const fields = client as unknown as { will: PublishPacket | null; _will: PublishPacket | null };
    expect(fields.will).toMatchObject({ topic: 'devices/dev-2/status' });

    dropClientWill(client);
    expect(fields.will).toBeNull();
    expect(fields._will).toBeNull();
    const closed = once(broker, 'clientDisconnect');
    device.stream.destroy();
    await closed;
    // The close publishes the will (if any) before it unregisters the client, so by now it would have been seen.
    expect(published.filter((topic) => topic === 'devices/dev-2/status')).toEqual([]);
  });

  it('every chunk a client sends reaches the inspector before the parser, and a refused chunk is not parsed', async () => {
    const broker = await started(createQuietAedes({}));
    const chunks: number[] = [];
    let refuseFrom = Infinity;
    const server = net.createServer((socket) => {
      const client = broker.handle(socket);
      inspectIncomingBytes(client, (chunk) => {
        chunks.push(chunk.length);
        return chunks.length < refuseFrom;
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const published: string[] = [];
    broker.on('publish', (packet: PublishPacket) => published.push(packet.topic));
    const device = await connect(port, 'dev-5');
    expect(chunks.length).toBeGreaterThan(0);
    await device.publishAsync('devices/dev-5/a', 'x', { qos: 1 });
    expect(published).toContain('devices/dev-5/a');
    refuseFrom = chunks.length + 1;
    device.publish('devices/dev-5/b', 'y', { qos: 0 });
    // The PINGREQ after it is answered only if the parser went on; the refused chunk left the parser untouched.
    await waitFor(() => chunks.length >= refuseFrom, 5000, 'the refused chunk');
    expect(published).not.toContain('devices/dev-5/b');
    device.end(true);
  });

  it('inbound QoS 2 publishes awaiting PUBREL are in `_inboundInflight` by message id', async () => {
    const broker = await started(createQuietAedes({}));
    const port = await serve(broker);
    const ready = once<[Client]>(broker, 'clientReady');
    const socket = net.connect(port, '127.0.0.1');
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    const answers: string[] = [];
    const answered = (cmd: string) => new Promise<void>((resolve) => parser.on('packet', (p: mqttPacket.Packet) => p.cmd === cmd && resolve()));
    parser.on('packet', (p: mqttPacket.Packet) => answers.push(p.cmd));
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'dev-6', keepalive: 60 }));
    const [client] = await ready;
    const pubrec = answered('pubrec');
    socket.write(mqttPacket.generate({ cmd: 'publish', topic: 'devices/dev-6/q2', payload: Buffer.from('x'), qos: 2, messageId: 7, retain: false, dup: false }));
    await pubrec;
    expect([...inboundAwaitingRelease(client)]).toEqual([7]);
    const pubcomp = answered('pubcomp');
    socket.write(mqttPacket.generate({ cmd: 'pubrel', messageId: 7 }));
    await pubcomp;
    expect([...inboundAwaitingRelease(client)]).toEqual([]);
    socket.destroy();
  });

  it('deliveries go through wrapped deliver0/deliverQoS with aedes\' dedupe, take the message id given, and acknowledgements are observed', async () => {
    const broker = await started(createQuietAedes({}));
    const calls: Array<{ kind: string; topic: string; first: boolean; qos: number }> = [];
    const acks: Array<{ cmd: string; messageId?: number }> = [];
    const held: Array<{ client: Client; packet: PublishPacket; deliver: Deliver }> = [];
    let holdTopic = '';
    const assigned: Array<{ topic: string; next: number; id: number }> = [];
    const server = net.createServer((socket) => {
      const client = broker.handle(socket);
      wrapDeliveries(client, (original, kind): Deliver => (packet, done) => {
        calls.push({ kind, topic: packet.topic, first: isFirstDelivery(client, packet, false), qos: deliveredQoS(client, packet) });
        if (packet.topic === holdTopic && isFirstDelivery(client, packet, true)) {
          held.push({ client, packet, deliver: original });
          return done();
        }
        // Taken ids are skipped: the one aedes would take next is "in flight".
        const next = (client as unknown as { _nextId: number })._nextId;
        if (kind === 'qos') assigned.push({ topic: packet.topic, next, id: assignMessageId(client, packet, (id) => id === next) });
        original(packet, done);
      });
      observeIncomingPackets(client, (packet) => acks.push(packet));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const device = await connect((server.address() as AddressInfo).port, 'dev-7');
    const received: mqttPacket.IPublishPacket[] = [];
    device.on('message', (_topic, _payload, packet) => received.push(packet));
    // Two filters that both match: aedes delivers once (its dedupe), and an exact-topic QoS 0 filter lowers the QoS.
    await device.subscribeAsync({ 'a/+': { qos: 1 }, 'a/#': { qos: 1 }, 'b/x': { qos: 0 }, 'b/#': { qos: 1 } });
    const publish = (topic: string) => new Promise<void>((resolve) => broker.publish({ cmd: 'publish', topic, payload: Buffer.from(topic), qos: 1, retain: false, dup: false } as PublishPacket, () => resolve()));
    await publish('a/1');
    await waitFor(() => received.length === 1 && acks.some((a) => a.cmd === 'puback'), 5000, 'the delivery and its PUBACK');
    expect(calls.filter((c) => c.topic === 'a/1').map((c) => [c.kind, c.first])).toEqual([['qos', true], ['qos', false]]);
    const delivered = received[0]!;
    expect(acks.find((a) => a.cmd === 'puback')?.messageId).toBe(delivered.messageId);
    const first = assigned.find((a) => a.topic === 'a/1')!;
    expect([delivered.messageId, first.id]).toEqual([first.id, first.next >= 65535 ? 1 : first.next + 1]);
    await publish('b/x');
    await waitFor(() => received.length === 2, 5000, 'the second delivery');
    expect(calls.filter((c) => c.topic === 'b/x').map((c) => c.qos).sort()).toEqual([0, 0]);
    // A delivery claimed and held back: aedes drops its duplicate, and lets the held one through once, later.
    holdTopic = 'a/2';
    await publish('a/2');
    await waitFor(() => calls.filter((c) => c.topic === 'a/2').length === 2, 5000, 'both deliveries of a/2');
    expect(held).toHaveLength(1);
    const [{ client, packet, deliver }] = held as [(typeof held)[number]];
    deliverClaimed(client, packet, () => deliver(packet, () => undefined));
    await waitFor(() => received.some((p) => p.topic === 'a/2'), 5000, 'the held delivery');
    await publish('a/3');
    await waitFor(() => received.some((p) => p.topic === 'a/3'), 5000, 'a later delivery');
    expect(received.filter((p) => p.topic === 'a/2')).toHaveLength(1);
    device.end(true);
  });

  describe('the dependency patches and the counting memory persistence', () => {
    it.each([
      ['aedes', 'lib/handlers/connect.js', 'enrolld patch: outgoingQueued'],
      ['aedes', 'lib/client.js', "enrolld patch: close on the socket's 'close'"],
      ['aedes', 'lib/client.js', 'enrolld patch: drain error when one waits'],
      ['aedes', 'lib/write.js', 'enrolld patch: CONNACK in one write'],
      ['mqtt-packet', 'parser.js', 'enrolld patch: plain BufferList'],
    ])('the installed %s carries its patch in %s (npm ci applies server/scripts/patch-dependencies.mjs): %s', (pkg, file, mark) => {
      // aedes requires its own mqtt-packet: resolve that one from aedes' directory.
      const aedesMain = require.resolve('aedes');
      const from = pkg === 'aedes' ? aedesMain : createRequire(aedesMain).resolve('mqtt-packet');
      const marker = `/node_modules/${pkg}/`;
      const installed = from.slice(0, from.lastIndexOf(marker) + marker.length) + file;
      expect(readFileSync(installed, 'utf8')).toContain(mark);
    });

    it('a connection that drops without DISCONNECT still ends its client: the will is published and the client leaves', async () => {
      const broker = await started(new Aedes());
      const port = await serve(broker);
      const watcher = await connect(port, 'watcher');
      cleanups.push(async () => void watcher.end(true));
      await new Promise<void>((resolve, reject) => watcher.subscribe('devices/+/status', { qos: 0 }, (err) => (err ? reject(err) : resolve())));
      const willSeen = once<[string, Buffer]>(watcher, 'message');
      const device = await connect(port, 'dev-drop', { topic: 'devices/dev-drop/status', payload: Buffer.from('gone'), qos: 0, retain: false });
      const gone = once<[Client]>(broker, 'clientDisconnect');
      device.stream.destroy(); // the TCP connection ends with no DISCONNECT
      const [client] = await gone;
      expect(client.id).toBe('dev-drop');
      const [topic, payload] = await willSeen;
      expect([topic, payload.toString()]).toEqual(['devices/dev-drop/status', 'gone']);
      device.end(true);
    });

    it('a CONNACK written in one piece is byte for byte what mqtt-packet generates: accepted, session present, refused', async () => {
      const broker = await started(new Aedes({ authenticate: (client, _u, _p, done) => done(null, client.id !== 'dev-refused') }));
      const port = await serve(broker);
      async function connack(clientId: string, clean: boolean): Promise<Buffer> {
        const socket = net.connect(port, '127.0.0.1');
        socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean, clientId, keepalive: 0 }));
        const [bytes] = await once<[Buffer]>(socket, 'data');
        socket.destroy();
        return bytes;
      }
      const generated = (returnCode: number, sessionPresent: boolean) => mqttPacket.generate({ cmd: 'connack', returnCode, sessionPresent });
      expect(await connack('dev-new', true)).toEqual(generated(0, false));
      // aedes answers "session present" to a persistent session that kept subscriptions.
      const first = await connect(port, 'dev-kept', undefined, false);
      await new Promise<void>((resolve, reject) => first.subscribe('devices/dev-kept/in', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
      const gone = once<[Client]>(broker, 'clientDisconnect');
      first.end(true);
      await gone;
      expect(await connack('dev-kept', false)).toEqual(generated(0, true));
      expect(await connack('dev-refused', true)).toEqual(generated(5, false));
      expect(generated(5, false)).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x05]));
    });

    it('a socket already closed when aedes takes it is closed at once', async () => {
      const broker = await started(new Aedes());
      const socket = new net.Socket();
      const socketClosed = once(socket, 'close');
      socket.destroy();
      await socketClosed; // its 'close' has been emitted: a listener added now never hears it
      const client = broker.handle(socket) as unknown as { closed: boolean };
      await waitFor(() => client.closed, 5000, 'the client of a destroyed socket closed');
    });

    /** A broker whose persistence records each client id aedes asked for its outgoing stream. */
    async function brokerRecordingReplays(persistence: NonNullable<Parameters<typeof createQuietAedes>[0]['persistence']>) {
      const replayed: string[] = [];
      const fields = persistence as unknown as { outgoingStream(client: { id: string }): unknown };
      const outgoingStream = fields.outgoingStream.bind(persistence);
      fields.outgoingStream = (client) => {
        replayed.push(client.id);
        return outgoingStream(client);
      };
      const broker = await started(createQuietAedes({ persistence }));
      return { broker, port: await serve(broker), replayed };
    }

    const connectAs = (port: number, clientId: string, clean: boolean) => connect(port, clientId, undefined, clean);

    async function disconnected(broker: Aedes, device: MqttClient): Promise<void> {
      const gone = once<[Client]>(broker, 'clientDisconnect');
      device.end(true);
      await gone;
    }

    it('a clean session with nothing queued skips the replay; the stock persistence still replays', async () => {
      const ours = await brokerRecordingReplays(createMemoryPersistence());
      await disconnected(ours.broker, await connectAs(ours.port, 'dev-clean', true));
      expect(ours.replayed).toEqual([]);
      await disconnected(ours.broker, await connectAs(ours.port, 'dev-persistent', false));
      expect(ours.replayed).toEqual(['dev-persistent']);

      const stock = await brokerRecordingReplays(aedesMemoryPersistence());
      await disconnected(stock.broker, await connectAs(stock.port, 'dev-clean', true));
      expect(stock.replayed).toEqual(['dev-clean']);
    });

    it('counts queued packets: a persistent session gets them on return, a clean one drops them, and nothing is replayed twice', async () => {
      const persistence = createMemoryPersistence();
      const { broker, port, replayed } = await brokerRecordingReplays(persistence);
      const publish = (topic: string) => new Promise<void>((resolve) => broker.publish({ cmd: 'publish', topic, payload: Buffer.from(topic), qos: 1, retain: false, dup: false } as PublishPacket, () => resolve()));
      const subscriber = await connectAs(port, 'dev-q', false);
      await subscriber.subscribeAsync({ 'q/#': { qos: 1 } });
      await disconnected(broker, subscriber);

      await publish('q/1');
      await waitFor(() => persistence.outgoingQueued({ id: 'dev-q' }), 5000, 'q/1 queued for the offline session');
      const back = await connectAs(port, 'dev-q', false);
      const received: string[] = [];
      back.on('message', (topic) => received.push(topic));
      await waitFor(() => received.length === 1 && !persistence.outgoingQueued({ id: 'dev-q' }), 5000, 'q/1 delivered and acknowledged');
      expect(received).toEqual(['q/1']);
      await disconnected(broker, back);

      // MQTT-3.1.2-6: a clean session discards what the persistent one left queued, and the queue is empty after it.
      await publish('q/2');
      await publish('q/3');
      await waitFor(() => persistence.outgoingQueued({ id: 'dev-q' }), 5000, 'q/2 and q/3 queued');
      const clean = await connectAs(port, 'dev-q', true);
      const cleanReceived: string[] = [];
      clean.on('message', (topic) => cleanReceived.push(topic));
      await waitFor(() => !persistence.outgoingQueued({ id: 'dev-q' }), 5000, 'the left-over queue dropped');
      await disconnected(broker, clean);
      expect(cleanReceived).toEqual([]);
      // Persistent sessions always replay; the clean one did because something was queued.
      expect(replayed).toEqual(['dev-q', 'dev-q', 'dev-q']);
      const left: unknown[] = [];
      for await (const packet of sessionPersistence(broker).outgoingStream({ id: 'dev-q' })) left.push(packet);
      expect(left).toEqual([]);
    });
  });

  describe('default persistence', () => {
    const promiseMethods: Record<string, number> = {
      delWill: 2,
      cleanSubscriptions: 2,
      outgoingClearMessageId: 3,
      cleanIncoming: 2,
      storeRetained: 2,
      putWill: 3,
      getWill: 2,
    };
    const streamMethods: Record<string, number> = { outgoingStream: 1, createRetainedStream: 1 };

    it('has each method the purge and the will refusal call, with the callback last', async () => {
      const broker = await started(new Aedes());
      const persistence = sessionPersistence(broker) as unknown as Record<string, unknown>;
      for (const [name, arity] of Object.entries({ ...promiseMethods, ...streamMethods })) {
        expect([name, typeof persistence[name]]).toEqual([name, 'function']);
        expect([name, (persistence[name] as (...args: unknown[]) => unknown).length]).toEqual([name, arity]);
      }
    });

    it('answers with a promise when no callback is given, and streams are async iterables', async () => {
      const broker = await started(new Aedes());
      const persistence = sessionPersistence(broker);
      const client = { id: 'dev-3', brokerId: broker.id };
      await persistence.storeRetained({ cmd: 'publish', topic: 'devices/dev-3/state', payload: Buffer.from('on'), qos: 0, retain: true });
      const retained: string[] = [];
      for await (const packet of persistence.createRetainedStream('devices/dev-3/#')) retained.push(packet.topic);
      expect(retained).toEqual(['devices/dev-3/state']);
      await persistence.storeRetained({ cmd: 'publish', topic: 'devices/dev-3/state', payload: Buffer.alloc(0), qos: 0, retain: true });
      const after: string[] = [];
      for await (const packet of persistence.createRetainedStream('devices/dev-3/#')) after.push(packet.topic);
      expect(after).toEqual([]);

      const queued: unknown[] = [];
      for await (const packet of persistence.outgoingStream(client)) queued.push(packet);
      expect(queued).toEqual([]);
      // A callback-style call without its callback would do nothing we could wait for: each must be a promise.
      const subscribed = persistence as typeof persistence & {
        addSubscriptions(client: { id: string }, subs: object[]): Promise<unknown>;
        subscriptionsByClient(client: { id: string }): Promise<unknown[] | null>;
      };
      await subscribed.addSubscriptions(client, [{ topic: 'devices/dev-3/cmd', qos: 1 }]);
      expect(await subscribed.subscriptionsByClient(client)).toHaveLength(1);
      const calls = {
        cleanSubscriptions: persistence.cleanSubscriptions(client),
        cleanIncoming: persistence.cleanIncoming?.(client),
        outgoingClearMessageId: persistence.outgoingClearMessageId(client, { messageId: 1 }),
        delWill: persistence.delWill(client),
      };
      for (const [name, result] of Object.entries(calls)) expect([name, typeof result?.then]).toEqual([name, 'function']);
      await Promise.all(Object.values(calls));
      expect(await subscribed.subscriptionsByClient(client)).toEqual([]);
    });

    it('keeps the fields stamped on a will, and adds the clientId a left-over will is read by', async () => {
      const broker = await started(new Aedes());
      const persistence = sessionPersistence(broker) as ReturnType<typeof sessionPersistence> & {
        putWill(client: { id: string }, packet: object): Promise<unknown>;
        getWill(client: { id: string }): Promise<PublishPacket | undefined>;
      };
      const will = { cmd: 'publish', topic: 'devices/dev-4/status', payload: Buffer.from('gone'), qos: 0, retain: false };
      stampWillSerial(will, '1a2b');
      await persistence.putWill({ id: 'dev-4' }, will);
      const stored = await persistence.getWill({ id: 'dev-4' });
      expect(stored).toBeDefined();
      expect(leftOverWill(stored!)).toEqual({ clientId: 'dev-4', serial: '1a2b' });
      await persistence.delWill({ id: 'dev-4' });
      expect(await persistence.getWill({ id: 'dev-4' })).toBeUndefined();
    });
  });
});
