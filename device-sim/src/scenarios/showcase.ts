import { bringUp, checkRevocation, pick, revokeWatched, runService, snapshotTraffic, waitForRotation } from '../scenario-steps.js';
import type { Scenario, ScenarioContext } from '../scenario.js';

export const showcase: Scenario = {
  name: 'showcase',
  description:
    'the demo: enroll → telemetry → a service reads all telemetry and commands every device → every device rotates once → a few are revoked and cut while the rest keep publishing',
  async run(ctx) {
    await bringUp(ctx);
    ctx.phase('telemetry');
    await ctx.sleep(ctx.opts.warmupMs);
    const service = await runService(ctx);
    try {
      await rotateAndRevoke(ctx);
    } finally {
      await service?.stop();
    }
  },
};

/** Every device rotates once; then a few are revoked and cut while the rest keep publishing. */
async function rotateAndRevoke(ctx: ScenarioContext): Promise<void> {
  const { fleet } = ctx;
  const online = fleet.devices.filter((d) => d.online);
  ctx.phase('rotation');
  if (ctx.opts.rotateAfterMs === undefined) {
    // spread the forced renewals over a few seconds, as a server's rotation hints would be
    for (const d of online) setTimeout(() => d.renewNow('forced'), ctx.rng() * 3_000);
  }
  // all devices, not just those online: a device that never connected must fail the rotation check too
  await waitForRotation(ctx, fleet.devices, ctx.opts.timeoutMs);
  ctx.phase('telemetry');
  await ctx.sleep(ctx.opts.warmupMs);
  if (!ctx.admin) return ctx.check('admin token available', false, 'revocation needs the admin API');
  const live = fleet.devices.filter((d) => d.online);
  const k = Math.min(live.length, ctx.opts.revokeCount ?? Math.max(1, Math.round(live.length / 10)));
  const victims = pick(live, k, ctx.rng);
  const ids = new Set(victims.map((d) => d.id));
  const others = live.filter((d) => !ids.has(d.id));
  const before = snapshotTraffic(others);
  ctx.phase(`revoke ${k}`);
  const watch = await revokeWatched(ctx, victims);
  await fleet.waitUntil(() => victims.every((d) => d.stopped), ctx.opts.cutBoundMs + 30_000);
  ctx.phase('hold');
  await ctx.sleep(ctx.opts.holdMs);
  watch.stop();
  checkRevocation(ctx, watch, others, before);
}
