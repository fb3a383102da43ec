// Everything the report shows, gathered from device events and periodic samples of the fleet.
import type { Clock } from './clock.js';
import type { Device, DeviceEventWithMeta } from './device.js';
import { Samples } from './stats.js';
import type { Summary } from './stats.js';

export const LATENCIES = ['enroll', 'connect', 'reconnect', 'renew', 'supersede', 'revokeCut', 'adminRevoke'] as const;
export type LatencyName = (typeof LATENCIES)[number];

export interface TimelineSample {
  /** seconds since the run started */
  t: number;
  enrolled: number;
  online: number;
  rotated: number;
  revoked: number;
  stopped: number;
  rssMiB: number;
  heapMiB: number;
  /** heap V8 has reserved (used or not) */
  heapTotalMiB: number;
  /** memory outside the JS heap that V8 accounts for: Buffers, ArrayBuffers, native objects held by JS (TLS contexts) */
  externalMiB: number;
}

export type MarkKind = 'enroll' | 'rotate' | 'revoke' | 'disconnect' | 'phase';

export interface TimelineMark {
  t: number;
  kind: MarkKind;
  count: number;
  label?: string;
}

export interface Counters {
  enrolled: number;
  enrollFailures: number;
  enrollGaveUp: number;
  connects: number;
  reconnects: number;
  connectFailures: number;
  disconnects: number;
  renewals: number;
  renewFailures: number;
  /** enroll or renew retries that waited for the server's Retry-After instead of the device's own backoff */
  retryAfterWaits: number;
  revokedStops: number;
  oldCertProbes: number;
  oldCertAccepted: number;
  /** probes the broker let in before it refused the old cert (within the bound) */
  oldCertLateRefusals: number;
  /** connects refused as revoked for devices the run revoked itself: the outcome a revocation asks for, not an error */
  expectedRefusals: number;
  commands: number;
}

/** An old certificate the broker let in after its successor connected (see Recorder.probeAdmissions). */
export interface ProbeAdmission {
  deviceId: string;
  /** the old certificate */
  serial: string;
  /** seconds since the start of the run, when the probe series ended */
  t: number;
  /** probes that got CONNACK 0 */
  acceptedAttempts: number;
  /** when a later probe was refused, ms after the successor's CONNACK; null when none was within the bound */
  refusedAfterMs: number | null;
}

const MAX_PROBE_ADMISSIONS = 50;

export class Recorder {
  readonly t0: number;
  readonly latencies = Object.fromEntries(LATENCIES.map((n) => [n, new Samples()])) as Record<LatencyName, Samples>;
  readonly errors = new Map<string, number>();
  /** devices this run revoked through the admin API; their revoked refusals are expected */
  readonly revokedByRun = new Set<string>();
  readonly counters: Counters = {
    enrolled: 0, enrollFailures: 0, enrollGaveUp: 0, connects: 0, reconnects: 0, connectFailures: 0, disconnects: 0,
    renewals: 0, renewFailures: 0, retryAfterWaits: 0, revokedStops: 0, oldCertProbes: 0, oldCertAccepted: 0, oldCertLateRefusals: 0, commands: 0,
    expectedRefusals: 0,
  };
  /** Old certificates a probe got in with (accepted at the bound, or refused only later): which device, to find it in the server log. */
  readonly probeAdmissions: ProbeAdmission[] = [];
  readonly samples: TimelineSample[] = [];
  private readonly bins = new Map<string, TimelineMark>();
  private readonly phases: TimelineMark[] = [];
  readonly stopReasons = new Map<string, number>();
  readonly renewVia = new Map<string, number>();
  readonly enrollVia = new Map<string, number>();
  readonly renewTrigger = new Map<string, number>();

  constructor(private readonly clock: Clock) {
    this.t0 = clock.now();
  }

  now(): number {
    return this.clock.now();
  }

  /** seconds since start */
  elapsed(at = this.clock.now()): number {
    return (at - this.t0) / 1000;
  }

  error(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  private bin(kind: MarkKind, at: number): void {
    // one mark per kind per quarter second keeps the JSON small for big fleets; the chart merges further
    const t = Math.floor(this.elapsed(at) * 4) / 4;
    const key = `${kind}:${t}`;
    const mark = this.bins.get(key);
    if (mark) mark.count++;
    else this.bins.set(key, { t, kind, count: 1 });
  }

  phase(label: string): void {
    this.phases.push({ t: this.elapsed(), kind: 'phase', count: 1, label });
  }

  observe(e: DeviceEventWithMeta): void {
    const c = this.counters;
    switch (e.type) {
      case 'enrolled':
        c.enrolled++;
        this.latencies.enroll.add(e.latencyMs);
        this.enrollVia.set(e.via, (this.enrollVia.get(e.via) ?? 0) + 1);
        this.bin('enroll', e.at);
        break;
      case 'enroll-failed':
        c.enrollFailures++;
        if (e.final) c.enrollGaveUp++;
        this.error(e.kind);
        break;
      case 'connected':
        c.connects++;
        if (e.reconnect) c.reconnects++;
        (e.reconnect ? this.latencies.reconnect : this.latencies.connect).add(e.latencyMs);
        break;
      case 'connect-failed':
        c.connectFailures++;
        if (e.revoked && this.revokedByRun.has(e.deviceId)) c.expectedRefusals++;
        else this.error(e.kind);
        break;
      case 'disconnected':
        c.disconnects++;
        this.bin('disconnect', e.at);
        break;
      case 'renewed':
        c.renewals++;
        this.latencies.renew.add(e.latencyMs);
        this.renewVia.set(e.via, (this.renewVia.get(e.via) ?? 0) + 1);
        this.renewTrigger.set(e.trigger, (this.renewTrigger.get(e.trigger) ?? 0) + 1);
        this.bin('rotate', e.at);
        break;
      case 'renew-failed':
        c.renewFailures++;
        this.error(e.kind);
        break;
      case 'retry-after':
        c.retryAfterWaits++;
        break;
      case 'revoked':
        c.revokedStops++;
        this.bin('revoke', e.at);
        break;
      case 'old-cert-probe':
        c.oldCertProbes++;
        if (e.refusedAfterMs !== undefined) this.latencies.supersede.add(e.refusedAfterMs);
        if (!e.accepted && e.acceptedAttempts > 0) c.oldCertLateRefusals++;
        if ((e.accepted || e.acceptedAttempts > 0) && this.probeAdmissions.length < MAX_PROBE_ADMISSIONS) {
          this.probeAdmissions.push({ deviceId: e.deviceId, serial: e.serial, t: Math.round(this.elapsed(e.at) * 10) / 10, acceptedAttempts: e.acceptedAttempts, refusedAfterMs: e.refusedAfterMs === undefined ? null : Math.round(e.refusedAfterMs) });
        }
        if (e.accepted) {
          c.oldCertAccepted++;
          this.error('old-cert-accepted');
        }
        break;
      case 'command':
        c.commands++;
        break;
      case 'stopped':
        this.stopReasons.set(e.reason, (this.stopReasons.get(e.reason) ?? 0) + 1);
        break;
    }
  }

  sample(devices: readonly Device[]): TimelineSample {
    let enrolled = 0;
    let online = 0;
    let rotated = 0;
    let revoked = 0;
    let stopped = 0;
    for (const d of devices) {
      if (d.credentials) enrolled++;
      if (d.online) online++;
      if (d.rotations > 0) rotated++;
      if (d.stopReason === 'revoked') revoked++;
      if (d.stopped) stopped++;
    }
    const mem = process.memoryUsage();
    const s: TimelineSample = {
      t: Math.round(this.elapsed() * 100) / 100,
      enrolled, online, rotated, revoked, stopped,
      rssMiB: Math.round((mem.rss / 1048576) * 10) / 10,
      heapMiB: Math.round((mem.heapUsed / 1048576) * 10) / 10,
      heapTotalMiB: Math.round((mem.heapTotal / 1048576) * 10) / 10,
      externalMiB: Math.round((mem.external / 1048576) * 10) / 10,
    };
    this.samples.push(s);
    return s;
  }

  marks(): TimelineMark[] {
    return [...this.bins.values(), ...this.phases].sort((a, b) => a.t - b.t);
  }

  latencySummaries(): Record<LatencyName, Summary> {
    return Object.fromEntries(LATENCIES.map((n) => [n, this.latencies[n].summary()])) as Record<LatencyName, Summary>;
  }
}
