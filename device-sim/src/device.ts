// One simulated device: a state machine over an injected clock, RNG and transport.
//   idle → enrolling → connecting → online ⇄ waiting (backoff) → … → stopped
// Renewal runs beside the connection (timer at ~2/3 of lifetime, a server hint, a command, or forced), and
// ends by reconnecting with the new cert. A device refused as revoked stops for good and records why.
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { topics } from '@enrolld/protocol';
import { backoffDelay } from './backoff.js';
import type { BackoffPolicy } from './backoff.js';
import type { Clock, TimerHandle } from './clock.js';
import { buildCsr } from './csr.js';
import type { Csr } from './csr.js';
import { parseMqttRenewReply } from './mqtt-renew.js';
import { renewalTime } from './renewal.js';
import type { RenewalPolicy } from './renewal.js';
import type { Rng } from './rng.js';
import { SimError, toSimError } from './sim-error.js';
import type { DeviceCredentials, DeviceTransport, EnrollVia, IssuedCert, MqttSession, RenewVia } from './transport.js';

export type DeviceState = 'idle' | 'enrolling' | 'connecting' | 'online' | 'waiting' | 'stopped';
export type StopReason = 'revoked' | 'enroll-refused' | 'enroll-failed' | 'expired' | 'shutdown';
export type RenewTrigger = 'timer' | 'hint' | 'command' | 'forced';

export interface DeviceOptions {
  deviceId: string;
  token: string;
  enrollVia: EnrollVia;
  renewVia: RenewVia;
  /** 0 = no telemetry */
  telemetryIntervalMs: number;
  qos: 0 | 1;
  /** also subscribe to its own telemetry, to see that the broker still routes it */
  echo: boolean;
  reconnect: BackoffPolicy;
  /** for enroll and renew retries */
  retry: BackoffPolicy;
  maxEnrollAttempts: number;
  renewal: RenewalPolicy;
  /** renew once this long after the first connect, whatever the lifetime (demo, e2e) */
  rotateAfterMs?: number;
  /** a rotation hint is acted on after a uniform delay in [0, this) */
  hintJitterMs: number;
  mqttRenewTimeoutMs: number;
  /** after a rotation, try the old cert this long after the successor connected; it must be refused */
  probeOldCertAfterMs?: number;
  /** keep probing (every second) until the old cert is refused, for at most this long after the successor connected */
  oldCertBoundMs?: number;
  /**
   * For brokers that refuse a revoked cert at the TLS layer with a bare close (no alert, no CONNACK): this many
   * handshake refusals in a row, with backoff between them, count as revoked. 0 = never infer: enrolld answers
   * CONNACK 5 (MQTT 3.1.1 §3.2.2.3), and a bare close there is a network fault to retry.
   */
  tlsRefusalsToStop: number;
  /** a server's Retry-After longer than this is cut to it, so one bad header cannot park a device for hours */
  retryAfterCapMs: number;
}

/** Retry-After waits are spread by up to this share, so devices told the same delay do not return together. */
const RETRY_AFTER_JITTER = 0.2;

/** Connect failures that mean "the broker would not take this certificate", as far as a client can tell. */
const TLS_REFUSALS = new Set(['connect-tls-refused', 'connect-econnreset']);

export interface DeviceGate {
  enroll(): Promise<() => void>;
  connect(): Promise<() => void>;
  /**
   * The old-certificate probe's handshake: ahead of queued connects, so the probe measures the broker and not the
   * simulator's own queue in a rotation wave (`connect` when absent).
   */
  probe?(): Promise<() => void>;
}

export type DeviceEvent =
  | { type: 'enrolled'; latencyMs: number; via: EnrollVia; serial: string; notAfter: number; lifetimeMs: number }
  | { type: 'enroll-failed'; kind: string; final: boolean }
  /** broker: the URL the session is on, when the transport names it (several cluster nodes) */
  | { type: 'connected'; latencyMs: number; reconnect: boolean; serial: string; broker?: string }
  /** revoked: the broker refused this certificate as revoked (CONNACK 5 with that reason) */
  | { type: 'connect-failed'; kind: string; revoked: boolean }
  | { type: 'disconnected'; kind: string }
  | { type: 'renewed'; latencyMs: number; via: RenewVia; trigger: RenewTrigger; serial: string; previousSerial: string }
  | { type: 'renew-failed'; kind: string; via: RenewVia }
  /** the server answered 503/429 with Retry-After, and the device waits that long (capped, jittered) */
  | { type: 'retry-after'; what: 'enroll' | 'renew'; waitMs: number }
  | { type: 'revoked'; how: string; cutAt: number | undefined }
  /**
   * accepted: the old cert still got in at the bound. refusedAfterMs: successor's CONNACK → first refusal.
   * acceptedAttempts: probes the broker let in before that (each one takes the device's live session over).
   */
  | { type: 'old-cert-probe'; accepted: boolean; kind: string; serial: string; refusedAfterMs: number | undefined; acceptedAttempts: number }
  | { type: 'command'; name: string }
  | { type: 'stopped'; reason: StopReason; detail: string };

export type DeviceEventWithMeta = DeviceEvent & { at: number; deviceId: string };

export interface DeviceDeps {
  clock: Clock;
  rng: Rng;
  transport: DeviceTransport;
  gate?: DeviceGate;
  observe?: (event: DeviceEventWithMeta) => void;
  /** injectable so unit tests can stay fast; defaults to async P-256 keygen */
  generateKey?: () => Promise<{ publicKey: KeyObject; privateKey: KeyObject }>;
}

const openGate: DeviceGate = { enroll: async () => () => {}, connect: async () => () => {} };

/**
 * P-256 keygen on the main thread (tens of µs). The async form runs in libuv's thread pool, where each thread
 * allocates from a malloc arena of its own: rotation waves grew those arenas, and the simulator's RSS with them,
 * for no gain at this cost.
 */
function generateP256(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  try {
    return Promise.resolve(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

interface PendingMqttRenew {
  resolve(payload: Buffer): void;
  reject(err: SimError): void;
}

export class Device {
  readonly id: string;
  state: DeviceState = 'idle';
  stopReason: StopReason | undefined;
  stopDetail = '';
  credentials: DeviceCredentials | undefined;
  readonly serials: string[] = [];
  // counters the fleet reads for its report
  telemetrySent = 0;
  echoesReceived = 0;
  commandsReceived = 0;
  rotations = 0;
  connects = 0;
  disconnects = 0;
  connectAttempt = 0;
  lastDisconnectAt: number | undefined;
  lastConnectAt: number | undefined;
  /** the broker URL of the current (or last) session, when the transport names it */
  broker: string | undefined;
  /** a cert superseded by rotation, kept until its successor connects and the probe of it is scheduled */
  private retired: DeviceCredentials | undefined;
  /** a superseded cert whose probe is scheduled or running; released when the probe has its answer */
  private probing: DeviceCredentials | undefined;
  private session: MqttSession | undefined;
  /** bumps on every new connection attempt, so callbacks from older sessions are ignored */
  private generation = 0;
  private renewing = false;
  private renewAttempt = 0;
  private forcedRotationDone = false;
  private tlsRefusals = 0;
  private pendingMqttRenew: PendingMqttRenew | undefined;
  /** the key and CSR of a renewal not yet answered: a retry must send the same CSR to get the same successor */
  private renewalRequest: { forSerial: string; privateKey: KeyObject; csr: Csr } | undefined;
  private timers = new Map<string, TimerHandle>();
  /** sleeps to wake up when the device stops, so start() never hangs */
  private sleepers = new Set<() => void>();
  private readonly gate: DeviceGate;
  private readonly genKey: () => Promise<{ publicKey: KeyObject; privateKey: KeyObject }>;

  constructor(readonly opts: DeviceOptions, private readonly deps: DeviceDeps) {
    this.id = opts.deviceId;
    this.gate = deps.gate ?? openGate;
    this.genKey = deps.generateKey ?? generateP256;
  }

  get online(): boolean {
    return this.state === 'online';
  }

  get stopped(): boolean {
    return this.state === 'stopped';
  }

  /** Enroll, then connect. Returns once enrollment has settled (the connection goes on by itself). */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    await this.enroll();
  }

  /** Fleet shutdown: stop timers and close the session gracefully. */
  async stop(): Promise<void> {
    const session = this.session;
    this.finish('shutdown', 'stopped by the fleet');
    if (session) await session.end().catch(() => {});
  }

  /** Drop the socket without DISCONNECT (a network blip); the device reconnects with backoff. */
  dropConnection(): void {
    this.session?.destroy();
  }

  /** Renew now, e.g. because the scenario asks for it. */
  renewNow(trigger: RenewTrigger = 'forced'): void {
    void this.renew(trigger);
  }

  // ── enrollment ────────────────────────────────────────────────────────────────────────────────────

  private async enroll(): Promise<void> {
    this.state = 'enrolling';
    const { publicKey, privateKey } = await this.genKey();
    // The same key and CSR on every retry: the server answers a retried (token, CSR) with the same cert (docs/architecture.md)
    const csr = buildCsr(this.id, publicKey, privateKey);
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) return;
      const release = await this.gate.enroll();
      const t0 = this.deps.clock.now();
      try {
        const issued = await this.deps.transport.enroll(this.opts.enrollVia, this.id, this.opts.token, csr, privateKey);
        release();
        if (this.stopped) return;
        this.credentials = { ...issued, privateKey };
        this.serials.push(issued.serial);
        this.emit({
          type: 'enrolled',
          latencyMs: this.deps.clock.now() - t0,
          via: this.opts.enrollVia,
          serial: issued.serial,
          notAfter: issued.notAfter,
          lifetimeMs: issued.notAfter - issued.notBefore,
        });
        this.scheduleRenewal();
        void this.connect();
        return;
      } catch (raw) {
        release();
        const err = toSimError(raw, 'enroll');
        const final = !err.retryable || attempt + 1 >= this.opts.maxEnrollAttempts;
        this.emit({ type: 'enroll-failed', kind: err.kind, final });
        if (final) {
          this.finish(err.retryable ? 'enroll-failed' : 'enroll-refused', err.kind);
          return;
        }
        await this.sleep('enroll-retry', this.retryDelay(err, 'enroll', attempt));
      }
    }
  }

  // ── connection ────────────────────────────────────────────────────────────────────────────────────

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const creds = this.credentials;
    if (!creds) return;
    this.state = 'connecting';
    const generation = ++this.generation;
    const release = await this.gate.connect();
    if (this.stopped || generation !== this.generation) return release();
    if (this.deps.clock.now() >= creds.notAfter) {
      release();
      this.finish('expired', `certificate ${creds.serial} expired before it could be renewed`);
      return;
    }
    const t0 = this.deps.clock.now();
    try {
      const session = await this.deps.transport.connect(this.id, creds, {
        onMessage: (topic, payload) => this.onMessage(generation, topic, payload),
        onClose: (error) => this.onClose(generation, error),
      });
      release();
      if (this.stopped || generation !== this.generation) {
        session.destroy();
        return;
      }
      this.session = session;
      this.broker = session.broker;
      this.state = 'online';
      this.connectAttempt = 0;
      this.tlsRefusals = 0;
      const reconnect = this.connects > 0;
      this.connects++;
      this.lastConnectAt = this.deps.clock.now();
      this.emit({ type: 'connected', latencyMs: this.lastConnectAt - t0, reconnect, serial: creds.serial, ...(session.broker ? { broker: session.broker } : {}) });
      // A connect begun before a renewal finished came up with the old certificate. The device holds a newer one, so it
      // moves to it now; only that connection ends the old one's overlap, so the probe waits for it.
      if (creds !== this.credentials) return this.switchToNewCert();
      await this.subscribe(session);
      this.startTelemetry(generation);
      if (this.opts.rotateAfterMs !== undefined && !this.forcedRotationDone) {
        this.forcedRotationDone = true;
        this.setTimer('forced-rotation', this.opts.rotateAfterMs, () => void this.renew('forced'));
      }
      if (this.retired && this.opts.probeOldCertAfterMs !== undefined) {
        const retired = this.retired;
        this.retired = undefined;
        // a probe still waiting for an older certificate's answer is not started again: that one is done with
        if (this.probing !== retired) this.release(this.probing);
        this.probing = retired;
        const successorAt = this.deps.clock.now();
        this.setTimer('probe', this.opts.probeOldCertAfterMs, () => void this.probeOldCert(retired, successorAt, 0));
      }
    } catch (raw) {
      release();
      if (generation !== this.generation || this.stopped) return;
      const err = toSimError(raw, 'connect');
      this.emit({ type: 'connect-failed', kind: err.kind, revoked: err.revoked });
      if (err.revoked) return this.revoked(err.kind);
      this.tlsRefusals = TLS_REFUSALS.has(err.kind) ? this.tlsRefusals + 1 : 0;
      if (this.opts.tlsRefusalsToStop > 0 && this.tlsRefusals >= this.opts.tlsRefusalsToStop) {
        return this.revoked(`${err.kind}×${this.tlsRefusals}`);
      }
      this.scheduleReconnect();
    }
  }

  private async subscribe(session: MqttSession): Promise<void> {
    const wanted = [topics.commands(this.id), topics.rotate(this.id), topics.renewAccepted(this.id), topics.renewRejected(this.id)];
    if (this.opts.echo) wanted.push(topics.telemetry(this.id));
    try {
      await session.subscribe(wanted);
    } catch (raw) {
      // A closed socket shows up through onClose; nothing else to do here
      this.emit({ type: 'connect-failed', kind: toSimError(raw, 'subscribe').kind, revoked: false });
    }
  }

  private onClose(generation: number, error: SimError | undefined): void {
    if (generation !== this.generation || this.stopped) return;
    this.session = undefined;
    this.clearTimer('telemetry');
    this.disconnects++;
    this.lastDisconnectAt = this.deps.clock.now();
    this.emit({ type: 'disconnected', kind: error?.kind ?? 'closed' });
    this.pendingMqttRenew?.reject(new SimError('renew-mqtt-closed', 'connection closed while waiting for the renewal answer'));
    if (error?.revoked) return this.revoked(error.kind);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    this.state = 'waiting';
    const delay = backoffDelay(this.connectAttempt++, this.opts.reconnect, this.deps.rng);
    this.setTimer('reconnect', delay, () => void this.connect());
  }

  /** The server's Retry-After when it gave one (RFC 9110 §10.2.3), else the device's own backoff. */
  private retryDelay(err: SimError, what: 'enroll' | 'renew', attempt: number): number {
    const asked = err.retryAfterMs;
    if (asked === undefined) return backoffDelay(attempt, this.opts.retry, this.deps.rng);
    const waitMs = Math.round(Math.min(asked, this.opts.retryAfterCapMs) * (1 + this.deps.rng() * RETRY_AFTER_JITTER));
    this.emit({ type: 'retry-after', what, waitMs });
    return waitMs;
  }

  private revoked(how: string): void {
    this.emit({ type: 'revoked', how, cutAt: this.lastDisconnectAt });
    this.finish('revoked', how);
  }

  // ── traffic ───────────────────────────────────────────────────────────────────────────────────────

  private startTelemetry(generation: number): void {
    const interval = this.opts.telemetryIntervalMs;
    if (interval <= 0) return;
    const tick = (): void => {
      if (generation !== this.generation || !this.session) return;
      this.telemetrySent++;
      const payload = JSON.stringify({ seq: this.telemetrySent, ts: Math.round(this.deps.clock.now()), temp: 20 + this.deps.rng() * 5 });
      this.session.publish(topics.telemetry(this.id), payload, this.opts.qos);
      this.setTimer('telemetry', interval, tick);
    };
    // a random phase, so a fleet connected together does not publish together
    this.setTimer('telemetry', this.deps.rng() * interval, tick);
  }

  private onMessage(generation: number, topic: string, payload: Buffer): void {
    if (generation !== this.generation || this.stopped) return;
    if (topic === topics.telemetry(this.id)) {
      this.echoesReceived++;
    } else if (topic === topics.rotate(this.id)) {
      // the server already spreads its hints; a little more jitter keeps a burst of hints from syncing us
      this.setTimer('hint', this.deps.rng() * this.opts.hintJitterMs, () => void this.renew('hint'));
    } else if (topic === topics.commands(this.id)) {
      this.commandsReceived++;
      let name = 'unknown';
      let id: string | undefined;
      try {
        const body = JSON.parse(payload.toString('utf8')) as { cmd?: unknown; id?: unknown };
        if (typeof body.cmd === 'string') name = body.cmd.slice(0, 32);
        if (typeof body.id === 'string') id = body.id.slice(0, 64);
      } catch {
        name = 'unparsable';
      }
      this.emit({ type: 'command', name });
      if (name === 'renew') void this.renew('command');
      // Acted on: acknowledged to whoever sent it (the sender matches the ack by id).
      if (id !== undefined) this.session?.publish(topics.commandsAck(this.id), JSON.stringify({ id, cmd: name, ok: name !== 'unparsable' }), 1);
    } else if (topic === topics.renewAccepted(this.id) || topic === topics.renewRejected(this.id)) {
      const pending = this.pendingMqttRenew;
      if (!pending) return;
      if (topic === topics.renewAccepted(this.id)) pending.resolve(payload);
      else pending.reject(parseMqttRenewReply.rejected(payload));
    }
  }

  // ── renewal ───────────────────────────────────────────────────────────────────────────────────────

  private scheduleRenewal(): void {
    const creds = this.credentials;
    if (!creds) return;
    const now = this.deps.clock.now();
    const at = renewalTime(creds.notBefore, creds.notAfter, now, this.opts.renewal, this.deps.rng, creds.renewAfter);
    this.setTimer('renewal', at - now, () => void this.renew('timer'));
  }

  private async renew(trigger: RenewTrigger): Promise<void> {
    if (this.renewing || this.stopped || !this.credentials) return;
    this.renewing = true;
    this.clearTimer('renewal');
    const current = this.credentials;
    const via = this.opts.renewVia;
    try {
      // one certificate has one successor: a retry after a lost or failed answer resends the same CSR, which the
      // server answers with the same certificate instead of a 409 (docs/architecture.md, applied to renewal)
      if (this.renewalRequest?.forSerial !== current.serial) {
        const { publicKey, privateKey } = await this.genKey();
        this.renewalRequest = { forSerial: current.serial, privateKey, csr: buildCsr(this.id, publicKey, privateKey) };
      }
      const { privateKey, csr } = this.renewalRequest;
      const t0 = this.deps.clock.now();
      const issued =
        via === 'mqtt' ? await this.renewOverMqtt(csr, privateKey) : await this.deps.transport.renew(via, current, csr, privateKey);
      if (this.stopped) return;
      this.renewAttempt = 0;
      this.renewalRequest = undefined;
      this.rotations++;
      this.credentials = { ...issued, privateKey };
      this.serials.push(issued.serial);
      // the old certificate is presented once more only by the probe (when the run probes); one not yet probed
      // from an earlier rotation never will be
      this.release(this.retired);
      this.retired = undefined;
      if (this.opts.probeOldCertAfterMs !== undefined) this.retired = current;
      else this.release(current);
      this.emit({ type: 'renewed', latencyMs: this.deps.clock.now() - t0, via, trigger, serial: issued.serial, previousSerial: current.serial });
      this.scheduleRenewal();
      this.switchToNewCert();
    } catch (raw) {
      const err = toSimError(raw, `renew-${via}`);
      this.emit({ type: 'renew-failed', kind: err.kind, via });
      if (err.revoked) return this.revoked(err.kind);
      if (this.stopped) return;
      // the server's expiry policy said no (expired renewals are refused by default): nothing left to renew with
      if (err.opts.problem?.type?.endsWith('/expired')) return this.finish('expired', err.kind);
      // keep trying, past notAfter too: the server may allow a grace window, and a live session does not end
      // by itself when its certificate expires
      const delay = this.retryDelay(err, 'renew', this.renewAttempt++);
      this.setTimer('renewal', delay, () => void this.renew(trigger));
    } finally {
      this.renewing = false;
    }
  }

  private renewOverMqtt(csr: Csr, privateKey: KeyObject): Promise<IssuedCert> {
    const session = this.session;
    if (!session) return Promise.reject(new SimError('renew-mqtt-offline', 'not connected', { retryable: true }));
    return new Promise<Buffer>((resolve, reject) => {
      const done = (): void => {
        this.pendingMqttRenew = undefined;
        this.clearTimer('mqtt-renew');
      };
      this.pendingMqttRenew = {
        resolve: (payload) => (done(), resolve(payload)),
        reject: (err) => (done(), reject(err)),
      };
      this.setTimer('mqtt-renew', this.opts.mqttRenewTimeoutMs, () =>
        this.pendingMqttRenew?.reject(new SimError('renew-mqtt-timeout', 'no answer on cert/renew/accepted|rejected')),
      );
      session.publish(topics.renew(this.id), JSON.stringify({ csr: csr.pem }), 1);
    }).then((payload) => parseMqttRenewReply.accepted(payload, privateKey));
  }

  /** Leave the old session cleanly and come back at once with the new cert (the server then retires the old one). */
  private switchToNewCert(): void {
    const old = this.session;
    if (!old) return; // offline: the next reconnect uses the new cert anyway
    this.generation++; // the old session's close is expected, not a disconnect to back off from
    this.session = undefined;
    this.clearTimer('telemetry');
    this.clearTimer('reconnect');
    void old.end().catch(() => {});
    this.connectAttempt = 0;
    void this.connect();
  }

  /** RFC 5280 superseded: after the change the old cert must be refused. A CONNECT with it is the test. */
  private async probeOldCert(retired: DeviceCredentials, successorAt: number, acceptedAttempts: number): Promise<void> {
    if (this.stopped) return;
    const release = await (this.gate.probe ? this.gate.probe() : this.gate.connect());
    let accepted = false;
    let kind = 'accepted';
    try {
      const transport = this.deps.transport;
      if (transport.probe) await transport.probe(this.id, retired);
      else (await transport.connect(this.id, retired, { onMessage: () => {}, onClose: () => {} })).destroy();
      // accepted. Same clientId, so the broker may have taken our live session over; that one reconnects.
      accepted = true;
    } catch (raw) {
      kind = toSimError(raw, 'probe').kind;
    } finally {
      release();
    }
    const now = this.deps.clock.now();
    if (!accepted) {
      this.probeDone(retired);
      this.emit({ type: 'old-cert-probe', accepted: false, kind, serial: retired.serial, refusedAfterMs: now - successorAt, acceptedAttempts });
      return;
    }
    const bound = this.opts.oldCertBoundMs ?? 0;
    if (now - successorAt + 1_000 <= bound) {
      this.setTimer('probe', 1_000, () => void this.probeOldCert(retired, successorAt, acceptedAttempts + 1));
      return;
    }
    this.probeDone(retired);
    this.emit({ type: 'old-cert-probe', accepted: true, kind, serial: retired.serial, refusedAfterMs: undefined, acceptedAttempts: acceptedAttempts + 1 });
  }

  private probeDone(retired: DeviceCredentials): void {
    if (this.probing === retired) this.probing = undefined;
    this.release(retired);
  }

  /** A certificate this device will not present again: the transport frees its TLS context now, not at some later GC. */
  private release(creds: DeviceCredentials | undefined): void {
    if (creds) this.deps.transport.release?.(creds);
  }

  // ── plumbing ──────────────────────────────────────────────────────────────────────────────────────

  private finish(reason: StopReason, detail: string): void {
    if (this.stopped) return;
    this.state = 'stopped';
    this.stopReason = reason;
    this.stopDetail = detail;
    this.generation++;
    for (const handle of this.timers.values()) this.deps.clock.clearTimeout(handle);
    this.timers.clear();
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
    const session = this.session;
    this.session = undefined;
    if (reason !== 'shutdown') session?.destroy();
    // none of its certificates will be presented again (a session still closing holds its own reference)
    for (const creds of new Set([this.credentials, this.retired, this.probing])) this.release(creds);
    this.retired = undefined;
    this.probing = undefined;
    this.pendingMqttRenew?.reject(new SimError('renew-mqtt-stopped', 'device stopped', { retryable: false }));
    this.emit({ type: 'stopped', reason, detail });
  }

  private emit(event: DeviceEvent): void {
    this.deps.observe?.({ ...event, at: this.deps.clock.now(), deviceId: this.id });
  }

  private setTimer(name: string, ms: number, fn: () => void): void {
    this.clearTimer(name);
    const handle = this.deps.clock.setTimeout(() => {
      this.timers.delete(name);
      fn();
    }, Math.max(0, ms));
    this.timers.set(name, handle);
  }

  private clearTimer(name: string): void {
    const handle = this.timers.get(name);
    if (handle !== undefined) this.deps.clock.clearTimeout(handle);
    this.timers.delete(name);
  }

  private sleep(name: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.sleepers.delete(wake);
        resolve();
      };
      this.sleepers.add(wake);
      this.setTimer(name, ms, wake);
    });
  }
}
