import type { Device } from '../device.js';
import type { SimError } from '../sim-error.js';
import { bringUp, pick, revokeWatched } from '../scenario-steps.js';
import type { RevocationWatch } from '../scenario-steps.js';
import type { Scenario, ScenarioContext } from '../scenario.js';

const round = (v: number): number => Math.round(v * 100) / 100;

async function trigger(ctx: ScenarioContext): Promise<{ how: string; killed?: string }> {
  const want = ctx.opts.stormTrigger;
  const { hooks } = ctx;
  if ((want === 'auto' || want === 'restart') && hooks.restartBroker) {
    await hooks.restartBroker();
    return { how: `broker restart (${hooks.describe})` };
  }
  if ((want === 'auto' || want === 'kill-node') && hooks.killBrokerNode) {
    const killed = await hooks.killBrokerNode();
    return { how: `SIGKILL of the broker node at ${killed} (${hooks.describe})`, killed };
  }
  if ((want === 'auto' || want === 'drop') && hooks.dropBrokerConnections) {
    await hooks.dropBrokerConnections();
    return { how: `broker dropped its sockets (${hooks.describe})` };
  }
  if (want === 'kill-node') throw new Error('--storm-trigger kill-node needs a cluster this process started (--spawn-cluster N)');
  if (want === 'restart' || want === 'drop') throw new Error(`--storm-trigger ${want} needs a server hook (--broker-restart-cmd, --broker-drop-url or --spawn-server)`);
  // no server hook: every device drops its own socket at once, which loads the broker the same way on the way back
  for (const d of ctx.fleet.devices) d.dropConnection();
  return { how: 'client-side socket drop (no server hook given)' };
}

/** Every revoked device's certificate, tried once on every broker that is still up: each must be refused (CONNACK 5). */
async function probeEverywhere(ctx: ScenarioContext, revoked: readonly Device[], brokers: readonly URL[]): Promise<{ tried: number; admitted: string[]; refusedAs: Map<string, number> }> {
  const mqtt = ctx.fleet.mqtt;
  const out = { tried: 0, admitted: [] as string[], refusedAs: new Map<string, number>() };
  if (!mqtt) return out;
  for (const d of revoked) {
    if (!d.credentials) continue;
    for (const url of brokers) {
      out.tried++;
      try {
        const session = await mqtt.connectTo(url, d.id, d.credentials, { onMessage: () => {}, onClose: () => {} });
        out.admitted.push(`${d.id}@${url.host}`);
        session.destroy();
      } catch (err) {
        const kind = (err as SimError).kind ?? 'error';
        out.refusedAs.set(kind, (out.refusedAs.get(kind) ?? 0) + 1);
      }
    }
  }
  return out;
}

export const reconnectStorm: Scenario = {
  name: 'reconnect-storm',
  description:
    'the broker is restarted (or its sockets dropped, or one cluster node SIGKILLed): every non-revoked device comes back; time to 50/90/99% is measured',
  async run(ctx) {
    const { fleet } = ctx;
    await bringUp(ctx);
    const killNode = ctx.opts.stormTrigger === 'kill-node' || (ctx.opts.stormTrigger === 'auto' && !ctx.hooks.restartBroker && ctx.hooks.killBrokerNode !== undefined);
    // With a node kill, half the devices to revoke are revoked before it and half while the fleet fails over, so a
    // revocation that lands while devices move between nodes is covered too.
    const toRevoke = ctx.admin ? pick(fleet.devices.filter((d) => d.online), ctx.opts.revokeCount ?? 0, ctx.rng) : [];
    const before = killNode ? toRevoke.slice(0, Math.ceil(toRevoke.length / 2)) : toRevoke;
    const during = killNode ? toRevoke.slice(before.length) : [];
    const watches: RevocationWatch[] = [];
    const revokedConnects = new Map<string, number[]>(toRevoke.map((d) => [d.id, []]));
    const offRevoked = fleet.onEvent((e) => {
      if (e.type === 'connected') revokedConnects.get(e.deviceId)?.push(e.at);
    });
    if (before.length > 0) {
      ctx.phase(`revoke ${before.length}`);
      watches.push(await revokeWatched(ctx, before));
      await fleet.waitUntil(() => before.every((d) => d.stopped), 30_000);
    }
    const revokedIds = new Set(toRevoke.map((d) => d.id));
    const onlineAtStorm = fleet.devices.filter((d) => d.online);
    const brokerOf = new Map(onlineAtStorm.map((d) => [d.id, d.broker]));
    const down = new Map<string, number>();
    const back = new Map<string, number>();
    const backOn = new Map<string, string | undefined>();
    const t0 = fleet.recorder.now();
    const off = fleet.onEvent((e) => {
      if (e.type === 'disconnected' && !down.has(e.deviceId)) down.set(e.deviceId, e.at);
      if (e.type === 'connected' && e.reconnect && !back.has(e.deviceId)) {
        back.set(e.deviceId, e.at);
        backOn.set(e.deviceId, e.broker);
      }
    });
    ctx.phase(killNode ? 'node kill' : 'storm');
    const { how, killed } = await trigger(ctx);
    const hookDone = fleet.recorder.now();
    ctx.figure('storm trigger', how);
    if (during.length > 0) {
      ctx.phase(`revoke ${during.length} during failover`);
      watches.push(await revokeWatched(ctx, during));
    }
    // who must come back: with a node kill, the devices that were on it; otherwise every device online at the storm
    const eligible = onlineAtStorm.filter((d) => !revokedIds.has(d.id) && (killed === undefined || brokerOf.get(d.id) === killed));
    const bystanders = killed === undefined ? [] : onlineAtStorm.filter((d) => !revokedIds.has(d.id) && brokerOf.get(d.id) !== killed);
    const bystanderDisconnectsBefore = new Map(bystanders.map((d) => [d.id, d.disconnects]));
    await fleet.waitUntil(() => eligible.every((d) => back.has(d.id) && d.online), ctx.opts.timeoutMs);
    if (during.length > 0) await fleet.waitUntil(() => during.every((d) => d.stopped), 30_000);
    off();
    offRevoked();
    for (const w of watches) w.stop();

    const times = eligible.map((d) => back.get(d.id)).filter((t): t is number => t !== undefined).map((t) => (t - t0) / 1000).sort((a, b) => a - b);
    const at = (share: number): number | string => {
      const n = Math.ceil(eligible.length * share);
      return times.length >= n && n > 0 ? round(times[n - 1] ?? Number.NaN) : 'not reached';
    };
    if (killed !== undefined) ctx.figure('devices on the killed node', eligible.length);
    ctx.figure('time to 50% back (s)', at(0.5));
    ctx.figure('time to 90% back (s)', at(0.9));
    ctx.figure('time to 99% back (s)', at(0.99));
    ctx.figure('time to 100% back (s)', at(1));
    ctx.figure('trigger duration (s)', round((hookDone - t0) / 1000));
    const stormS = times.length > 0 ? Math.max(0.001, (times.at(-1) ?? 0) - (hookDone - t0) / 1000) : 0;
    if (times.length > 0) ctx.figure('reconnects/s after trigger', round(times.length / Math.max(stormS, 0.001)));
    for (const [url, n] of [...fleet.onlineByBroker().entries()].sort()) ctx.figure(`online at the end on ${url}`, n);

    const target99 = Math.ceil(eligible.length * 0.99);
    ctx.check('the storm happened (every device lost its session)', eligible.length > 0 && eligible.every((d) => down.has(d.id)), `${eligible.filter((d) => down.has(d.id)).length}/${eligible.length} disconnected`);
    ctx.check('99% of devices back', times.length >= target99, `${times.length}/${eligible.length} back; 99% at ${at(0.99)}s`);
    ctx.check('all non-revoked devices back', times.length === eligible.length, `${times.length}/${eligible.length} back within ${ctx.opts.timeoutMs / 1000}s`);
    if (killed !== undefined) {
      const elsewhere = eligible.filter((d) => back.has(d.id) && backOn.get(d.id) !== undefined && backOn.get(d.id) !== killed);
      ctx.figure('devices back on another node', elsewhere.length);
      ctx.check('devices of the killed node came back on another node', elsewhere.length === eligible.length, `${elsewhere.length}/${eligible.length} reconnected to a surviving node`);
      const moved = bystanders.filter((d) => d.disconnects > (bystanderDisconnectsBefore.get(d.id) ?? 0) || !d.online);
      ctx.check('devices on the other nodes kept their sessions', moved.length === 0, moved.length ? `${moved.length}/${bystanders.length} lost their session (e.g. ${moved[0]?.id})` : `${bystanders.length} stayed connected`);
    }
    if (toRevoke.length > 0) {
      // admitted: a CONNACK 0 for a revoked device after the admin API confirmed its revocation, during the run or
      // when its certificate is tried on every surviving node at the end
      let admittedInRun = 0;
      for (const w of watches) {
        for (const d of toRevoke) {
          const answered = w.answeredAt.get(d.id);
          if (answered === undefined) continue;
          admittedInRun += (revokedConnects.get(d.id) ?? []).filter((t) => t >= answered).length;
        }
      }
      const survivors = (fleet.mqtt?.brokerUrls ?? []).filter((u) => u.href !== killed);
      const probe = await probeEverywhere(ctx, toRevoke, survivors);
      const adminErrors = watches.flatMap((w) => w.adminErrors);
      const refusedAs = [...probe.refusedAs.entries()].map(([k, v]) => `${k} ×${v}`).join(', ') || '–';
      ctx.figure('revoked devices', toRevoke.length);
      ctx.figure('revoked devices admitted', admittedInRun + probe.admitted.length);
      ctx.check('admin revoke calls succeeded', adminErrors.length === 0, adminErrors.length ? adminErrors.slice(0, 3).join('; ') : `${toRevoke.length} revoked (${before.length} before the storm, ${during.length} during it)`);
      ctx.check('revoked devices stay out', admittedInRun === 0, `${admittedInRun} CONNECTs accepted after the revocation was confirmed, from ${toRevoke.length} revoked devices`);
      ctx.check('every surviving node refuses the revoked certificates', probe.admitted.length === 0 && probe.tried === toRevoke.length * survivors.length,
        probe.admitted.length ? `admitted: ${probe.admitted.slice(0, 3).join(', ')}` : `${probe.tried} CONNECTs (${toRevoke.length} devices × ${survivors.length} nodes) refused: ${refusedAs}`);
    }
  },
};
