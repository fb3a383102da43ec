// In-process connections to a running broker (broker.handleConnection, what its TLS listener calls for each accepted
// socket): the broker's end reads as a verified TLS socket carrying the TLS session of a real mutual-TLS connection of
// the device, so admission reads the identity from that session as it does on the wire. For the MQTT fuzz target (one
// connection per execution costs no handshake) and for tests that need an exact order of bytes and close.
import { Duplex } from 'node:stream';
import type tls from 'node:tls';
import type { Client } from 'aedes';
import type { createBroker } from '../../server/src/mqtt/broker.js';
import { rawConnect } from './raw-mqtt.js';
import type { DeviceCert, TestPki } from './test-pki.js';

/** One end of an in-process connection: what it writes the other end reads; destroying either closes both. */
export class StreamEnd extends Duplex {
  peer: StreamEnd | undefined;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.peer && !this.peer.destroyed) this.peer.push(chunk);
    done();
  }

  override _final(done: (error?: Error | null) => void): void {
    if (this.peer && !this.peer.destroyed) this.peer.push(null);
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    const peer = this.peer;
    this.peer = undefined;
    if (peer) {
      peer.peer = undefined;
      peer.destroy();
    }
    done(error);
  }
}

/** The broker's end: it reads as a verified TLS socket whose session is that of a real mutual-TLS connection. */
class VerifiedPeerEnd extends StreamEnd {
  readonly authorized = true;
  readonly authorizationError = null;
  readonly remoteAddress = '127.0.0.1';

  constructor(private readonly session: Buffer) {
    super();
  }

  getSession(): Buffer {
    return this.session;
  }
}

type Broker = Pick<ReturnType<typeof createBroker>, 'aedes' | 'handleConnection'>;

/** The broker's side of one real mutual-TLS connection of the device: its TLS session names the certificate. */
export async function brokerTlsSessionOf(broker: Broker, port: number, pki: Pick<TestPki, 'caChainPem'>, device: DeviceCert): Promise<Buffer> {
  const raw = await rawConnect(port, pki, device);
  const clients = (broker.aedes() as unknown as { clients: Record<string, Client> }).clients;
  const session = (clients[device.deviceId]?.conn as tls.TLSSocket | undefined)?.getSession();
  raw.end();
  await raw.closed;
  if (!session) throw new Error(`no TLS session of ${device.deviceId} on the broker`);
  return session;
}

/** A new in-process connection the broker has taken: the device's end, and the close of the broker's end. */
export function connectInProcess(broker: Broker, tlsSession: Buffer): { device: StreamEnd; brokerClosed: Promise<void> } {
  const device = new StreamEnd();
  const brokerEnd = new VerifiedPeerEnd(tlsSession);
  device.peer = brokerEnd;
  brokerEnd.peer = device;
  const brokerClosed = new Promise<void>((resolve) => brokerEnd.once('close', () => resolve()));
  broker.handleConnection(brokerEnd);
  return { device, brokerClosed };
}
