// Building blocks the scenarios share: bring the fleet up, revoke some devices and watch them from the device
// side, watch a group of devices come back after a storm, run a backend service that commands the fleet.
import { randomBytes } from 'node:crypto';
import type { Device } from './device.js';
import { createMqttTransport } from './mqtt-transport.js';
import type { ScenarioContext } from './scenario.js';
import { BackendService } from './service.js';

const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** Start every device and wait until each one is online or has stopped. */
export async function bringUp(ctx: ScenarioContext, label = 'enroll + connect'): Promise<boolean> {
  const { fleet } = ctx;
  ctx.phase(label);
  const t0 = performance.now();
  let lastEnroll = t0;
  let lastConnect = t0;
  const off = fleet.onEvent((e) => {
    if (e.type === 'enrolled') lastEnroll = performance.now();
    if (e.type === 'connected' && !e.reconnect) lastConnect = performance.now();
  });
  await fleet.start();
  const done = await fleet.waitUntil(() => fleet.devices.every((d) => d.online || d.stopped), ctx.opts.timeoutMs);
  off();
  const c = fleet.counts();
  ctx.figure('enroll rate (devices/s)', round(c.enrolled / Math.max(0.001, (lastEnroll - t0) / 1000)));
  ctx.figure('online rate from start (devices/s)', round(c.online / Math.max(0.001, (lastConnect - t0) / 1000)));
  ctx.figure('time to all connected (s)', done ? round((lastConnect - t0) / 1000, 2) : `not all within ${ctx.opts.timeoutMs / 1000}s`);
  const mem = fleet.memoryPerDevice();
  ctx.figure('memory per connected device (RSS KiB)', mem.rssKiB);
  ctx.log(`${c.enrolled}/${c.total} enrolled, ${c.online} connected in ${round((performance.now() - t0) / 1000)}s`);
  ctx.check('all devices enrolled', c.enrolled === c.total, `${c.enrolled}/${c.total} enrolled${describeStops(fleet.devices)}`);
  ctx.check('all devices connected', c.online === c.total, `${c.online}/${c.total} online after bring-up`);
  return c.online === c.total;
}

export function describeStops(devices: readonly Device[]): string {
  const reasons = new Map<string, number>();
  for (const d of devices) if (d.stopped) reasons.set(`${d.stopReason}: ${d.stopDetail}`, (reasons.get(`${d.stopReason}: ${d.stopDetail}`) ?? 0) + 1);
  if (reasons.size === 0) return '';
  return `; stopped: ${[...reasons.entries()].slice(0, 3).map(([k, v]) => `${v}× ${k}`).join(', ')}`;
}

export function pick<T>(items: readonly T[], k: number, rng: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, k);
}

export interface RevocationWatch {
  ids: Set<string>;
  requestedAt: Map<string, number>;
  /** when the admin API confirmed the revocation: a CONNECT admitted after this is a defect */
  answeredAt: Map<string, number>;
  cutAt: Map<string, number>;
  connectsAfter: Map<string, number>;
  adminErrors: string[];
  stop(): void;
}

/**
 * Revoke devices through the admin API while watching them from the device side: revoke → cut latency is the
 * time from sending the admin request to the device seeing its socket close (same process clock).
 */
export async function revokeWatched(ctx: ScenarioContext, devices: readonly Device[], concurrency = 10): Promise<RevocationWatch> {
  const { fleet, admin } = ctx;
  const watch: RevocationWatch = {
    ids: new Set(devices.map((d) => d.id)), requestedAt: new Map(), answeredAt: new Map(), cutAt: new Map(), connectsAfter: new Map(), adminErrors: [], stop: () => {},
  };
  watch.stop = fleet.onEvent((e) => {
    const t = watch.requestedAt.get(e.deviceId);
    if (t === undefined) return;
    if (e.type === 'disconnected' && !watch.cutAt.has(e.deviceId) && e.at >= t) {
      watch.cutAt.set(e.deviceId, e.at);
      fleet.recorder.latencies.revokeCut.add(e.at - t);
    }
    // an offline device learns it at its next CONNECT: that refusal is its cut
    if (e.type === 'revoked' && !watch.cutAt.has(e.deviceId)) {
      watch.cutAt.set(e.deviceId, e.at);
      fleet.recorder.latencies.revokeCut.add(e.at - t);
    }
    if (e.type === 'connected' && e.at >= t) watch.connectsAfter.set(e.deviceId, (watch.connectsAfter.get(e.deviceId) ?? 0) + 1);
  });
  if (!admin) {
    watch.adminErrors.push('no admin token: cannot revoke');
    return watch;
  }
  const queue = [...devices];
  await Promise.all(
    Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
      for (let d = queue.shift(); d; d = queue.shift()) {
        const t0 = fleet.recorder.now();
        watch.requestedAt.set(d.id, t0);
        // before the call: the device may be refused on reconnect before the admin answer arrives
        fleet.recorder.revokedByRun.add(d.id);
        try {
          await admin.revokeDevice(d.id, ctx.opts.revokeReason);
          watch.answeredAt.set(d.id, fleet.recorder.now());
          fleet.recorder.latencies.adminRevoke.add(fleet.recorder.now() - t0);
        } catch (err) {
          watch.adminErrors.push(`${d.id}: ${(err as Error).message}`);
          fleet.recorder.error((err as { kind?: string }).kind ?? 'admin-revoke-error');
        }
      }
    }),
  );
  return watch;
}

/** The checks every revocation scenario makes on the revoked set and on the rest. */
export function checkRevocation(ctx: ScenarioContext, watch: RevocationWatch, others: readonly Device[], before: Map<string, { sent: number; echoes: number; disconnects: number }>): void {
  const { fleet } = ctx;
  const revoked = [...watch.ids].map((id) => fleet.byId.get(id)).filter((d): d is Device => d !== undefined);
  ctx.check('admin revoke calls succeeded', watch.adminErrors.length === 0, watch.adminErrors.length ? watch.adminErrors.slice(0, 3).join('; ') : `${revoked.length} revoked`);
  const cut = revoked.filter((d) => watch.cutAt.has(d.id));
  const s = fleet.recorder.latencies.revokeCut.summary();
  ctx.check('revoked devices were cut', cut.length === revoked.length, `${cut.length}/${revoked.length} saw their session end; p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms`);
  const slow = cut.filter((d) => (watch.cutAt.get(d.id) ?? 0) - (watch.requestedAt.get(d.id) ?? 0) > ctx.opts.cutBoundMs);
  ctx.check(`cut within ${ctx.opts.cutBoundMs} ms`, slow.length === 0 && cut.length === revoked.length, slow.length ? `${slow.length} slower (e.g. ${slow[0]?.id})` : `max ${s.max.toFixed(0)} ms`);
  const stayedOut = revoked.filter((d) => d.stopReason === 'revoked');
  const back = revoked.filter((d) => (watch.connectsAfter.get(d.id) ?? 0) > 0);
  ctx.check('revoked devices cannot reconnect', back.length === 0 && stayedOut.length === revoked.length,
    `${stayedOut.length}/${revoked.length} refused as revoked (${[...new Set(stayedOut.map((d) => d.stopDetail))].join(', ') || '–'}); ${back.length} got back in`);
  const dropped = others.filter((d) => !d.online || d.disconnects > (before.get(d.id)?.disconnects ?? 0));
  ctx.check('other devices unaffected', dropped.length === 0, dropped.length ? `${dropped.length} of ${others.length} lost their session (e.g. ${dropped[0]?.id})` : `${others.length} stayed connected`);
  const quiet = others.filter((d) => d.telemetrySent <= (before.get(d.id)?.sent ?? 0));
  const noEcho = ctx.opts.echo ? others.filter((d) => d.echoesReceived <= (before.get(d.id)?.echoes ?? 0)) : [];
  ctx.check('other devices keep publishing', quiet.length === 0 && noEcho.length === 0,
    ctx.opts.echo
      ? `${others.length - noEcho.length}/${others.length} saw their own telemetry routed back after the revocations`
      : `${others.length - quiet.length}/${others.length} published after the revocations`);
}

export function snapshotTraffic(devices: readonly Device[]): Map<string, { sent: number; echoes: number; disconnects: number }> {
  return new Map(devices.map((d) => [d.id, { sent: d.telemetrySent, echoes: d.echoesReceived, disconnects: d.disconnects }]));
}

/** Waits until every device that was online has rotated at least once, is back online, and had its old cert probed. */
export async function waitForRotation(ctx: ScenarioContext, devices: readonly Device[], timeoutMs: number): Promise<void> {
  const { fleet } = ctx;
  const probing = ctx.opts.probeOldCertAfterMs !== undefined;
  const t0 = performance.now();
  let probes = 0;
  let accepted = 0;
  let late = 0;
  const refusals = new Map<string, number>();
  const off = fleet.onEvent((e) => {
    if (e.type !== 'old-cert-probe') return;
    probes++;
    if (e.accepted) accepted++;
    else refusals.set(e.kind, (refusals.get(e.kind) ?? 0) + 1);
    if (!e.accepted && e.acceptedAttempts > 0) late++;
  });
  const rotatedDone = (d: Device): boolean => d.stopped || (d.rotations > 0 && d.online);
  await fleet.waitUntil(() => devices.every(rotatedDone) && (!probing || probes >= devices.filter((d) => d.rotations > 0).length), timeoutMs);
  if (probing) await ctx.sleep(200); // let probes in flight land
  off();
  const rotated = devices.filter((d) => d.rotations > 0);
  const backOnline = rotated.filter((d) => d.online && d.credentials?.serial === d.serials.at(-1));
  ctx.figure('rotation wave duration (s)', round((performance.now() - t0) / 1000, 2));
  ctx.check('every device rotated at least once', rotated.length === devices.length && devices.length > 0, `${rotated.length}/${devices.length} rotated${describeStops(devices)}`);
  ctx.check('rotated devices reconnected with the new cert', backOnline.length === rotated.length, `${backOnline.length}/${rotated.length} online on their new serial`);
  if (probing) {
    const s = fleet.recorder.latencies.supersede.summary();
    ctx.check(`no old cert accepted ${ctx.opts.oldCertBoundMs / 1000}s after the change`, accepted === 0 && probes >= rotated.length,
      `${probes} old certs probed: ${accepted} still accepted at the bound, ${late} refused only after being let in; refused ${Number.isFinite(s.p50) ? `p50 ${s.p50.toFixed(0)} ms, p99 ${s.p99.toFixed(0)} ms` : '–'} after the successor's CONNACK, by ${[...refusals.entries()].map(([k, v]) => `${k} ×${v}`).join(', ') || '–'}`);
  }
}

/**
 * A backend service next to the fleet: it reads every device's telemetry and sends each online device one command;
 * the report gets the counts and the command round trip (publish → the device's acknowledgement).
 */
export async function runService(ctx: ScenarioContext): Promise<BackendService | undefined> {
  const { fleet } = ctx;
  if (!ctx.admin) {
    ctx.check('service reads telemetry and sends commands', false, 'a service needs the admin API');
    return undefined;
  }
  ctx.phase('service + commands');
  const transport = createMqttTransport({
    brokerUrls: fleet.opts.brokerUrls,
    ca: fleet.opts.ca,
    sendChain: fleet.opts.sendChain,
    connectTimeoutMs: fleet.opts.mqttConnectTimeoutMs,
    keepaliveSeconds: fleet.opts.keepaliveSeconds,
  });
  const service = new BackendService(`sim-service-${randomBytes(3).toString('hex')}`, { admin: ctx.admin, transport });
  try {
    await service.start();
  } catch (error) {
    ctx.check('service connected', false, (error as Error).message);
    return undefined;
  }
  const online = fleet.devices.filter((d) => d.online);
  // Every online device publishes once per telemetry interval: the service hears each of them within two.
  const heardAll = await fleet.waitUntil(() => online.every((d) => service.devicesHeard.has(d.id) || !d.online), 2 * ctx.opts.telemetryIntervalMs + 5_000);
  const stillOnline = online.filter((d) => d.online);
  service.sendCommands(stillOnline.map((d) => d.id));
  await service.waitForAcks(10_000);
  const rtt = service.roundTripMs.summary();
  ctx.figure('service: telemetry messages received', service.telemetryReceived);
  ctx.figure('service: devices heard', service.devicesHeard.size);
  ctx.figure('service: commands sent', service.commandsSent);
  ctx.figure('service: command acks received', service.acksReceived);
  ctx.figure('command round trip p50 (ms)', round(rtt.p50, 1));
  ctx.figure('command round trip p99 (ms)', round(rtt.p99, 1));
  ctx.check('service hears every online device', heardAll, `${service.devicesHeard.size} devices heard, ${online.length} online`);
  ctx.check('every command acknowledged', service.acksReceived === service.commandsSent && service.commandsSent > 0, `${service.acksReceived}/${service.commandsSent} acknowledged`);
  return service;
}
