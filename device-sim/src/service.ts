// A backend service as a fleet's applications run one (docs/architecture.md §5): its own identity
// (urn:enrolld:service:<name>, made through the admin API with a key that never leaves this process), one MQTT session
// that reads every device's telemetry and command acknowledgements, and commands sent to devices with their
// round-trip time measured from publish to acknowledgement.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { topics } from '@enrolld/protocol';
import type { AdminClient } from './admin-client.js';
import { buildCsr } from './csr.js';
import { issuedFromRest } from './issued-cert.js';
import type { MqttTransport } from './mqtt-transport.js';
import { Samples } from './stats.js';
import type { MqttSession } from './transport.js';

const TELEMETRY_ID = /^devices\/([^/]+)\/telemetry$/;

export class BackendService {
  telemetryReceived = 0;
  readonly devicesHeard = new Set<string>();
  commandsSent = 0;
  acksReceived = 0;
  readonly roundTripMs = new Samples();
  private readonly pending = new Map<string, { deviceId: string; sentAt: number }>();
  private session: MqttSession | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly deps: { admin: AdminClient; transport: MqttTransport },
  ) {}

  /** Creates the service identity, connects, and subscribes to all telemetry and acknowledgements. */
  async start(): Promise<void> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr(this.name, publicKey, privateKey, 'service');
    const issued = issuedFromRest(await this.deps.admin.createService(this.name, csr.pem), privateKey);
    this.session = await this.deps.transport.connect(this.name, { ...issued, privateKey }, {
      onMessage: (topic, payload) => this.onMessage(topic, payload),
      onClose: () => (this.session = undefined),
    });
    await this.session.subscribe([topics.allTelemetry, topics.allCommandAcks]);
  }

  /** Sends one `ping` command to each device; their acknowledgements arrive through onMessage. */
  sendCommands(deviceIds: readonly string[]): void {
    const session = this.session;
    if (!session) throw new Error(`service ${this.name} is not connected`);
    for (const deviceId of deviceIds) {
      const id = randomBytes(8).toString('hex');
      this.pending.set(id, { deviceId, sentAt: performance.now() });
      this.commandsSent++;
      session.publish(topics.commands(deviceId), JSON.stringify({ id, cmd: 'ping', sentAt: Date.now() }), 1);
    }
  }

  /** Resolves when every command sent has been acknowledged, or when `timeoutMs` passed (then some are missing). */
  async waitForAcks(timeoutMs: number): Promise<void> {
    if (this.pending.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.waiters.push(done);
    });
  }

  async stop(): Promise<void> {
    await this.session?.end();
    this.session = undefined;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const telemetry = TELEMETRY_ID.exec(topic);
    if (telemetry) {
      this.telemetryReceived++;
      this.devicesHeard.add(telemetry[1]!);
      return;
    }
    let ack: { id?: unknown };
    try {
      ack = JSON.parse(payload.toString('utf8')) as { id?: unknown };
    } catch {
      return;
    }
    const sent = typeof ack.id === 'string' ? this.pending.get(ack.id) : undefined;
    if (!sent || topic !== topics.commandsAck(sent.deviceId)) return;
    this.pending.delete(ack.id as string);
    this.acksReceived++;
    this.roundTripMs.add(performance.now() - sent.sentAt);
    if (this.pending.size === 0) for (const wake of this.waiters.splice(0)) wake();
  }
}
