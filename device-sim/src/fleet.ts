// A fleet: N devices in one process sharing transports, limiters and a recorder.
import { realClock } from './clock.js';
import type { Clock } from './clock.js';
import { Device } from './device.js';
import type { DeviceEventWithMeta, DeviceOptions } from './device.js';
import { createHttpTransport } from './http-transport.js';
import type { HttpTransport } from './http-transport.js';
import { createLimiter } from './limiter.js';
import type { Limiter } from './limiter.js';
import { createMqttTransport } from './mqtt-transport.js';
import type { MqttTransport } from './mqtt-transport.js';
import { createCredentialContexts } from './tls-credentials.js';
import { Recorder } from './recorder.js';
import { mathRng, seededRng } from './rng.js';
import type { Rng } from './rng.js';
import type { DeviceToken } from './tokens.js';
import type { DeviceTransport, EnrollVia, RenewVia } from './transport.js';

export type EnrollMode = EnrollVia | 'mix';
export type RenewMode = RenewVia | 'mix';

export interface FleetOptions {
  apiUrl: URL;
  /** one broker, or the nodes of a cluster: devices are spread over them and move to the next on reconnect */
  brokerUrls: URL[];
  /** trust anchor PEM */
  ca: string;
  sendChain: boolean;
  enrollVia: EnrollMode;
  renewVia: RenewMode;
  device: Omit<DeviceOptions, 'deviceId' | 'token' | 'enrollVia' | 'renewVia'>;
  /** enrollment requests in flight */
  enrollConcurrency: number;
  /** mTLS handshakes in flight (connects, reconnects and probes) */
  connectConcurrency: number;
  /** new handshakes per second; 0 = unlimited */
  connectRate: number;
  /** devices started per second; 0 = all at once (the limiters still apply) */
  rampPerSecond: number;
  seed: number | undefined;
  httpTimeoutMs: number;
  mqttConnectTimeoutMs: number;
  keepaliveSeconds: number;
}

export interface FleetCounts {
  total: number;
  enrolled: number;
  online: number;
  rotated: number;
  revoked: number;
  stopped: number;
}

const ENROLL_MIX: EnrollVia[] = ['rest', 'est'];
const RENEW_MIX: RenewVia[] = ['rest', 'est', 'mqtt'];

export class Fleet {
  readonly devices: Device[] = [];
  readonly byId = new Map<string, Device>();
  readonly recorder: Recorder;
  readonly enrollLimiter: Limiter;
  readonly connectLimiter: Limiter;
  private readonly http: HttpTransport | undefined;
  /** the fleet's own MQTT transport (absent when a test passes a fake one) */
  readonly mqtt: MqttTransport | undefined;
  private readonly listeners = new Set<(e: DeviceEventWithMeta) => void>();
  private readonly startTimers = new Set<ReturnType<typeof setTimeout>>();
  private stopping = false;
  /** RSS and heap just before devices were created, for memory per device */
  readonly baseline = process.memoryUsage();

  constructor(
    tokens: readonly DeviceToken[],
    readonly opts: FleetOptions,
    deps: { clock?: Clock; rng?: Rng; transport?: DeviceTransport } = {},
  ) {
    const clock = deps.clock ?? realClock;
    const rng = deps.rng ?? (opts.seed === undefined ? mathRng : seededRng(opts.seed));
    this.recorder = new Recorder(clock);
    this.enrollLimiter = createLimiter({ concurrency: opts.enrollConcurrency, ratePerSecond: 0 });
    this.connectLimiter = createLimiter({ concurrency: opts.connectConcurrency, ratePerSecond: opts.connectRate });
    let transport = deps.transport;
    if (!transport) {
      // one secure context per certificate for its MQTT connections and its renewals
      const contexts = createCredentialContexts({ ca: opts.ca, sendChain: opts.sendChain });
      const http = createHttpTransport({ apiUrl: opts.apiUrl, ca: opts.ca, sendChain: opts.sendChain, maxSockets: opts.enrollConcurrency, timeoutMs: opts.httpTimeoutMs, contexts });
      const mqtt = createMqttTransport({
        brokerUrls: opts.brokerUrls, ca: opts.ca, sendChain: opts.sendChain, connectTimeoutMs: opts.mqttConnectTimeoutMs, keepaliveSeconds: opts.keepaliveSeconds, contexts,
      });
      this.http = http;
      this.mqtt = mqtt;
      transport = { enroll: http.enroll, renew: http.renew, connect: mqtt.connect, probe: mqtt.probe, release: contexts.release };
    }
    const gate = { enroll: () => this.enrollLimiter.acquire(), connect: () => this.connectLimiter.acquire(), probe: () => this.connectLimiter.acquire(true) };
    const observe = (e: DeviceEventWithMeta): void => {
      this.recorder.observe(e);
      for (const l of this.listeners) l(e);
    };
    tokens.forEach((t, i) => {
      const device = new Device(
        {
          ...opts.device,
          deviceId: t.deviceId,
          token: t.token,
          // a mix is spread by index, so every transport gets an even share
          enrollVia: opts.enrollVia === 'mix' ? (ENROLL_MIX[i % ENROLL_MIX.length] ?? 'rest') : opts.enrollVia,
          renewVia: opts.renewVia === 'mix' ? (RENEW_MIX[i % RENEW_MIX.length] ?? 'rest') : opts.renewVia,
        },
        // each device its own stream, so jitter does not correlate across devices
        { clock, rng: opts.seed === undefined ? rng : seededRng(opts.seed * 100_003 + i), transport, gate, observe },
      );
      this.devices.push(device);
      this.byId.set(device.id, device);
    });
  }

  onEvent(listener: (e: DeviceEventWithMeta) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Launch every device (at the ramp rate). Returns once all are launched, not once they are online. */
  async start(): Promise<void> {
    const ramp = this.opts.rampPerSecond;
    if (ramp <= 0) {
      for (const d of this.devices) void d.start();
      return;
    }
    await new Promise<void>((resolve) => {
      if (this.devices.length === 0) return resolve();
      this.devices.forEach((d, i) => {
        const timer = setTimeout(() => {
          this.startTimers.delete(timer);
          if (!this.stopping) void d.start();
          if (i === this.devices.length - 1) resolve();
        }, (i / ramp) * 1000);
        this.startTimers.add(timer);
      });
    });
  }

  counts(): FleetCounts {
    const c: FleetCounts = { total: this.devices.length, enrolled: 0, online: 0, rotated: 0, revoked: 0, stopped: 0 };
    for (const d of this.devices) {
      if (d.credentials) c.enrolled++;
      if (d.online) c.online++;
      if (d.rotations > 0) c.rotated++;
      if (d.stopReason === 'revoked') c.revoked++;
      if (d.stopped) c.stopped++;
    }
    return c;
  }

  /** Online devices per broker URL (devices whose transport does not name one count under "-"). */
  onlineByBroker(): Map<string, number> {
    const by = new Map<string, number>();
    for (const d of this.devices) if (d.online) by.set(d.broker ?? '-', (by.get(d.broker ?? '-') ?? 0) + 1);
    return by;
  }

  /** Polls until `done()` or the deadline; true if done. */
  async waitUntil(done: () => boolean, timeoutMs: number, pollMs = 100): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      if (performance.now() >= deadline || this.stopping) return done();
      await new Promise((r) => setTimeout(r, pollMs));
    }
    return true;
  }

  /** Memory growth since the fleet was created, per device. */
  memoryPerDevice(): { rssKiB: number; heapKiB: number; devices: number } {
    const now = process.memoryUsage();
    const n = Math.max(1, this.devices.length);
    return {
      devices: this.devices.length,
      rssKiB: Math.round(((now.rss - this.baseline.rss) / 1024 / n) * 10) / 10,
      heapKiB: Math.round(((now.heapUsed - this.baseline.heapUsed) / 1024 / n) * 10) / 10,
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.startTimers) clearTimeout(t);
    this.startTimers.clear();
    await Promise.all(this.devices.map((d) => d.stop()));
    this.enrollLimiter.close();
    this.connectLimiter.close();
    this.http?.close();
  }
}
