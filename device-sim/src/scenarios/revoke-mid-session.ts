import { bringUp, checkRevocation, pick, revokeWatched, snapshotTraffic } from '../scenario-steps.js';
import type { Scenario } from '../scenario.js';

export const revokeMidSession: Scenario = {
  name: 'revoke-mid-session',
  description: 'revoke K of N devices through the admin API while they publish: the K are cut and stay out, the rest carry on',
  async run(ctx) {
    await bringUp(ctx);
    if (!ctx.admin) return ctx.check('admin token available', false, 'revocation needs the admin API: pass --admin-token-file or set ENROLLD_HOME');
    ctx.phase('publish');
    await ctx.sleep(ctx.opts.warmupMs);
    const online = ctx.fleet.devices.filter((d) => d.online);
    const k = Math.min(online.length, ctx.opts.revokeCount ?? Math.max(1, Math.round(online.length / 10)));
    const victims = pick(online, k, ctx.rng);
    const victimIds = new Set(victims.map((d) => d.id));
    const others = online.filter((d) => !victimIds.has(d.id));
    const before = snapshotTraffic(others);
    ctx.phase(`revoke ${k}`);
    const watch = await revokeWatched(ctx, victims);
    // wait for every victim to be cut and refused, then keep watching the others for the hold time
    await ctx.fleet.waitUntil(() => victims.every((d) => d.stopped), ctx.opts.cutBoundMs + 30_000);
    ctx.phase('hold');
    await ctx.sleep(ctx.opts.holdMs);
    watch.stop();
    ctx.figure('revoked', k);
    checkRevocation(ctx, watch, others, before);
  },
};
