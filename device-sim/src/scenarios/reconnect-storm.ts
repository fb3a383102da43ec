import type { Device } from '../device.js';
import { bringUp, pick, revokeWatched } from '../scenario-steps.js';
import type { Scenario, ScenarioContext } from '../scenario.js';

const round = (v: number): number => Math.round(v * 100) / 100;

async function trigger(ctx: ScenarioContext): Promise<string> {
  const want = ctx.opts.stormTrigger;
  const { hooks } = ctx;
  if ((want === 'auto' || want === 'restart') && hooks.restartBroker) {
    await hooks.restartBroker();
    return `broker restart (${hooks.describe})`;
  }
  if ((want === 'auto' || want === 'drop') && hooks.dropBrokerConnections) {
    await hooks.dropBrokerConnections();
    return `broker dropped its sockets (${hooks.describe})`;
  }
  if (want === 'restart' || want === 'drop') throw new Error(`--storm-trigger ${want} needs a server hook (--broker-restart-cmd, --broker-drop-url or --spawn-server)`);
  // no server hook: every device drops its own socket at once, which loads the broker the same way on the way back
  for (const d of ctx.fleet.devices) d.dropConnection();
  return 'client-side socket drop (no server hook given)';
}

export const reconnectStorm: Scenario = {
  name: 'reconnect-storm',
  description: 'the broker is restarted (or its sockets dropped): every non-revoked device comes back; time to 99% is measured',
  async run(ctx) {
    const { fleet } = ctx;
    await bringUp(ctx);
    let revoked: Device[] = [];
    if ((ctx.opts.revokeCount ?? 0) > 0 && ctx.admin) {
      revoked = pick(fleet.devices.filter((d) => d.online), ctx.opts.revokeCount ?? 0, ctx.rng);
      ctx.phase(`revoke ${revoked.length}`);
      const watch = await revokeWatched(ctx, revoked);
      await fleet.waitUntil(() => revoked.every((d) => d.stopped), 30_000);
      watch.stop();
    }
    const eligible = fleet.devices.filter((d) => d.online);
    const revokedIds = new Set(revoked.map((d) => d.id));
    const down = new Map<string, number>();
    const back = new Map<string, number>();
    let revokedBack = 0;
    const t0 = fleet.recorder.now();
    const off = fleet.onEvent((e) => {
      if (e.type === 'disconnected' && !down.has(e.deviceId)) down.set(e.deviceId, e.at);
      if (e.type === 'connected' && e.reconnect && !back.has(e.deviceId)) back.set(e.deviceId, e.at);
      if (e.type === 'connected' && revokedIds.has(e.deviceId)) revokedBack++;
    });
    ctx.phase('storm');
    const how = await trigger(ctx);
    const hookDone = fleet.recorder.now();
    ctx.figure('storm trigger', how);
    const target99 = Math.ceil(eligible.length * 0.99);
    await fleet.waitUntil(() => eligible.filter((d) => back.has(d.id) && d.online).length >= eligible.length, ctx.opts.timeoutMs);
    off();
    const times = eligible.map((d) => back.get(d.id)).filter((t): t is number => t !== undefined).map((t) => (t - t0) / 1000).sort((a, b) => a - b);
    const at = (n: number): number | string => (times.length >= n && n > 0 ? round(times[n - 1] ?? Number.NaN) : 'not reached');
    ctx.figure('time to 50% back (s)', at(Math.ceil(eligible.length * 0.5)));
    ctx.figure('time to 99% back (s)', at(target99));
    ctx.figure('time to 100% back (s)', at(eligible.length));
    ctx.figure('trigger duration (s)', round((hookDone - t0) / 1000));
    const stormS = times.length > 0 ? Math.max(0.001, (times.at(-1) ?? 0) - (hookDone - t0) / 1000) : 0;
    if (times.length > 0) ctx.figure('reconnects/s after trigger', round(times.length / Math.max(stormS, 0.001)));
    ctx.check('the storm happened (every device lost its session)', eligible.every((d) => down.has(d.id)), `${eligible.filter((d) => down.has(d.id)).length}/${eligible.length} disconnected`);
    ctx.check('99% of devices back', times.length >= target99, `${times.length}/${eligible.length} back; 99% at ${at(target99)}s`);
    ctx.check('all non-revoked devices back', times.length === eligible.length, `${times.length}/${eligible.length} back within ${ctx.opts.timeoutMs / 1000}s`);
    if (revoked.length > 0) ctx.check('revoked devices stay out', revokedBack === 0, `${revokedBack} CONNECTs accepted from ${revoked.length} revoked devices`);
  },
};
