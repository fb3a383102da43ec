import type { Device } from '../device.js';
import { bringUp, pick } from '../scenario-steps.js';
import type { Scenario } from '../scenario.js';
import { histogramQuantileBound, sampleValue } from '../server-metrics.js';
import { slope } from '../stats.js';

export const soak: Scenario = {
  name: 'soak',
  description: 'a mix of telemetry, rotations, revocations and network blips over --duration, watching the simulator RSS slope',
  async run(ctx) {
    const { fleet } = ctx;
    await bringUp(ctx);
    const tStart = fleet.recorder.elapsed();
    const end = performance.now() + ctx.opts.durationMs;
    const revoked = new Set<string>();
    let revokeConnects = 0;
    const off = fleet.onEvent((e) => {
      if (e.type === 'connected' && revoked.has(e.deviceId)) revokeConnects++;
    });
    const lastConnectError = new Map<string, string>();
    const offErrors = fleet.onEvent((e) => {
      if (e.type === 'connected') lastConnectError.delete(e.deviceId);
      if (e.type === 'connect-failed') lastConnectError.set(e.deviceId, e.kind);
    });
    // The server's own RSS and CPU, read from its /metrics at every tick (process_* of the server process only: an
    // embedded Postgres is not counted).
    const serverSamples: Array<{ t: number; rssMiB: number; cpuS: number; renewals: number }> = [];
    const sampleServer = async () => {
      const text = await ctx.admin?.metricsText().catch(() => undefined);
      const rss = text === undefined ? undefined : sampleValue(text, 'process_resident_memory_bytes');
      const cpu = text === undefined ? undefined : sampleValue(text, 'process_cpu_seconds_total');
      if (rss !== undefined && cpu !== undefined) {
        serverSamples.push({ t: fleet.recorder.elapsed(), rssMiB: rss / 2 ** 20, cpuS: cpu, renewals: fleet.recorder.counters.renewals });
      }
    };
    await sampleServer();
    // one action per tick keeps the load steady: rotate 5%, blip 5%, revoke 1 (when the admin API is there)
    const tickMs = Math.max(5_000, Math.min(60_000, ctx.opts.durationMs / 12));
    let tick = 0;
    ctx.phase('soak');
    while (performance.now() < end) {
      await ctx.sleep(Math.min(tickMs, Math.max(0, end - performance.now())));
      if (performance.now() >= end) break;
      await sampleServer();
      const live = fleet.devices.filter((d) => d.online);
      const share = Math.max(1, Math.round(live.length * 0.05));
      const action = tick++ % 3;
      if (action === 0) for (const d of pick(live, share, ctx.rng)) d.renewNow('forced');
      if (action === 1) for (const d of pick(live, share, ctx.rng)) d.dropConnection();
      if (action === 2 && ctx.admin && live.length > 1) {
        const [victim] = pick(live, 1, ctx.rng) as Device[];
        if (victim) {
          // only a revocation the server confirmed counts: a failed call leaves a device that may rightly reconnect
          await ctx.admin.revokeDevice(victim.id, 'keyCompromise').then(
            () => revoked.add(victim.id),
            (err: Error & { kind?: string }) => fleet.recorder.error(err.kind ?? 'admin-revoke-error'),
          );
        }
      }
    }
    off();
    await sampleServer();
    await ctx.sleep(Math.min(ctx.opts.holdMs, 10_000));
    // RSS slope after the first fifth of the soak, in MiB per minute
    const warm = tStart + (fleet.recorder.elapsed() - tStart) / 5;
    const pts = fleet.recorder.samples.filter((s) => s.t >= warm).map((s) => ({ x: s.t / 60, y: s.rssMiB }));
    const rssSlope = Math.round(slope(pts) * 100) / 100;
    const heapSlope = Math.round(slope(fleet.recorder.samples.filter((s) => s.t >= warm).map((s) => ({ x: s.t / 60, y: s.heapMiB }))) * 100) / 100;
    ctx.figure('RSS slope (MiB/min)', rssSlope);
    ctx.figure('heap slope (MiB/min)', heapSlope);
    const first = serverSamples[0];
    const last = serverSamples.at(-1);
    if (first && last && last.t > first.t) {
      const renewals = last.renewals - first.renewals;
      ctx.figure('renewals per second (soak phase)', Math.round((renewals / (last.t - first.t)) * 100) / 100);
      if (renewals > 0) ctx.figure('server CPU per renewal (ms; all server work ÷ renewals)', Math.round(((last.cpuS - first.cpuS) / renewals) * 1e5) / 100);
      ctx.figure('server CPU (s per s, soak phase)', Math.round(((last.cpuS - first.cpuS) / (last.t - first.t)) * 1000) / 1000);
      const serverPts = serverSamples.filter((s) => s.t >= warm).map((s) => ({ x: s.t / 60, y: s.rssMiB }));
      if (serverPts.length >= 2) ctx.figure('server RSS slope (MiB/min)', Math.round(slope(serverPts) * 100) / 100);
      ctx.figure('server RSS at the end (MiB)', Math.round(last.rssMiB * 10) / 10);
    }
    ctx.check(`RSS slope ≤ ${ctx.opts.maxRssSlopeMiBPerMin} MiB/min`, rssSlope <= ctx.opts.maxRssSlopeMiBPerMin, `${rssSlope} MiB/min over ${pts.length} samples (heap ${heapSlope} MiB/min)`);
    const eligible = fleet.devices.filter((d) => !revoked.has(d.id));
    const enough = Math.ceil(eligible.length * 0.99);
    // Rotation goes on to the end, and every renewal reconnects on the new certificate, so at any instant some devices
    // are between two connections, and the last blip's devices may be in backoff. Give them one full backoff (its cap)
    // plus a connect: a device that is not back by then is stuck, and the check names it.
    const settleStart = performance.now();
    await fleet.waitUntil(() => eligible.filter((d) => d.online).length >= enough, ctx.opts.reconnectCapMs + 10_000);
    const settledS = Math.round((performance.now() - settleStart) / 100) / 10;
    const online = eligible.filter((d) => d.online).length;
    // The ones that are not, by state, and their last connect error: a slow reconnect and a refusal read differently.
    const offline = eligible.filter((d) => !d.online);
    const byState = countBy(offline.map((d) => (d.stopped ? `stopped ${d.stopReason}` : d.state)));
    const lastErrors = countBy(offline.map((d) => lastConnectError.get(d.id) ?? 'none'));
    ctx.check(`≥ 99% of non-revoked devices online at the end (within ${Math.round(ctx.opts.reconnectCapMs / 1000) + 10} s)`, online >= enough,
      `${online}/${eligible.length} after ${settledS} s` + (offline.length ? `; offline: ${byState}; last connect error: ${lastErrors}` : ''));
    offErrors();
    // out = stopped for good; one that expired before it could be refused is out too
    const outDevices = [...revoked].map((id) => fleet.byId.get(id)).filter((d) => d?.stopped);
    const asRevoked = outDevices.filter((d) => d?.stopReason === 'revoked').length;
    ctx.check('revoked devices stay out', revokeConnects === 0 && outDevices.length === revoked.size,
      `${outDevices.length}/${revoked.size} stopped (${asRevoked} refused as revoked); ${revokeConnects} got back in`);
    // short-lived certificates must be renewed in time however busy the server is (docs/architecture.md §8)
    const expired = fleet.devices.filter((d) => d.stopReason === 'expired');
    ctx.check('no device expired', expired.length === 0, expired.length ? `${expired.length} expired (e.g. ${expired[0]?.id}: ${expired[0]?.stopDetail})` : `${fleet.devices.length} renewed in time`);
    // a busy server may answer 503 with Retry-After, which devices honour; a soak at this size must not need to
    const serverErrors = [...fleet.recorder.errors].filter(([kind]) => /-http-5\d\d/.test(kind));
    const serverErrorCount = serverErrors.reduce((sum, [, n]) => sum + n, 0);
    ctx.check('no 5xx answers', serverErrorCount === 0,
      serverErrorCount ? serverErrors.map(([kind, n]) => `${kind} ×${n}`).join(', ') : `${fleet.recorder.counters.retryAfterWaits} Retry-After waits`);
    const c = fleet.recorder.counters;
    const sup = fleet.recorder.latencies.supersede.summary();
    // the server's share of that delay: successor's first CONNECT → predecessor's supersede committed
    const metrics = await ctx.admin?.metricsText().catch(() => undefined);
    if (metrics) {
      for (const q of [0.5, 0.99]) {
        const bound = histogramQuantileBound(metrics, 'enrolld_rotation_supersede_delay_seconds', q);
        if (bound !== undefined) ctx.figure(`server supersede delay p${q * 100} (ms, ≤ bucket bound)`, bound === Infinity ? '> 30000' : bound * 1000);
      }
    }
    ctx.check(`no old cert accepted ${ctx.opts.oldCertBoundMs / 1000}s after the change`, c.oldCertAccepted === 0,
      `${c.oldCertProbes} old certs probed, ${c.oldCertAccepted} still accepted at the bound, ${c.oldCertLateRefusals} refused late; refused p50 ${sup.p50.toFixed(0)} ms, p99 ${sup.p99.toFixed(0)} ms after the successor's CONNACK`);
  },
};

/** "a ×2, b ×1", most frequent first. */
function countBy(values: string[]): string {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([v, n]) => `${v} ×${n}`).join(', ');
}
