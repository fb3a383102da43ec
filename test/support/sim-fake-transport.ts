// An in-memory stand-in for the server, for unit tests of the device state machine only.
import type { KeyObject } from 'node:crypto';
import { SimError } from '@enrolld/device-sim';
import type { Clock, Csr, DeviceCredentials, DeviceTransport, EnrollVia, IssuedCert, MqttHandlers, MqttSession } from '@enrolld/device-sim';

export class FakeSession implements MqttSession {
  readonly published: { topic: string; payload: string; qos: 0 | 1 }[] = [];
  readonly subscriptions: string[] = [];
  closed = false;

  constructor(readonly serial: string, private readonly handlers: MqttHandlers) {}

  publish(topic: string, payload: string | Buffer, qos: 0 | 1): void {
    if (!this.closed) this.published.push({ topic, payload: payload.toString(), qos });
  }

  async subscribe(topicList: string[]): Promise<void> {
    this.subscriptions.push(...topicList);
  }

  async end(): Promise<void> {
    this.closed = true;
  }

  destroy(): void {
    this.serverClose();
  }

  /** The broker closes the socket (a revocation cut, a restart). */
  serverClose(error?: SimError): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose(error);
  }

  deliver(topic: string, payload: string): void {
    if (!this.closed) this.handlers.onMessage(topic, Buffer.from(payload));
  }
}

export type ConnectVerdict = 'accept' | SimError;

export class FakeTransport implements DeviceTransport {
  lifetimeMs = 60_000;
  /** the answer's renewAfter as a share of the lifetime (the server's renewal window opening); none when undefined */
  renewAfterFraction: number | undefined;
  serialSeq = 0;
  readonly enrollCalls: { at: number; via: EnrollVia; token: string }[] = [];
  readonly renewCalls: { at: number; via: string; serial: string }[] = [];
  readonly connectCalls: { at: number; serial: string }[] = [];
  readonly sessions: FakeSession[] = [];
  /** decides each CONNECT; default accept */
  connectVerdict: (serial: string, attempt: number) => ConnectVerdict = () => 'accept';
  enrollVerdict: (attempt: number) => SimError | undefined = () => undefined;
  renewVerdict: (attempt: number) => SimError | undefined = () => undefined;

  constructor(private readonly clock: Clock) {}

  issue(deviceId: string): IssuedCert {
    const now = this.clock.now();
    const issued: IssuedCert = { deviceId, serial: `s${++this.serialSeq}`, certificatePem: '', chainPem: [], notBefore: now, notAfter: now + this.lifetimeMs };
    return this.renewAfterFraction === undefined ? issued : { ...issued, renewAfter: now + this.lifetimeMs * this.renewAfterFraction };
  }

  async enroll(via: EnrollVia, deviceId: string, token: string, _csr: Csr, _key: KeyObject): Promise<IssuedCert> {
    this.enrollCalls.push({ at: this.clock.now(), via, token });
    const err = this.enrollVerdict(this.enrollCalls.length - 1);
    if (err) throw err;
    return this.issue(deviceId);
  }

  async renew(via: 'rest' | 'est', creds: DeviceCredentials, _csr: Csr, _key: KeyObject): Promise<IssuedCert> {
    this.renewCalls.push({ at: this.clock.now(), via, serial: creds.serial });
    const err = this.renewVerdict(this.renewCalls.length - 1);
    if (err) throw err;
    return this.issue(creds.deviceId);
  }

  /** while set, a CONNECT waits for it before its verdict (a connect still in flight when something else happens) */
  hold: Promise<void> | undefined;

  async connect(_deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession> {
    this.connectCalls.push({ at: this.clock.now(), serial: creds.serial });
    if (this.hold) await this.hold;
    const verdict = this.connectVerdict(creds.serial, this.connectCalls.length - 1);
    if (verdict !== 'accept') throw verdict;
    const session = new FakeSession(creds.serial, handlers);
    this.sessions.push(session);
    return session;
  }

  /** serials whose TLS material the device released, in order */
  readonly released: string[] = [];

  release(creds: DeviceCredentials): void {
    this.released.push(creds.serial);
  }

  get liveSession(): FakeSession | undefined {
    return this.sessions.filter((s) => !s.closed).at(-1);
  }
}
