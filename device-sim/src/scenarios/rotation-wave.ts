import { bringUp, waitForRotation } from '../scenario-steps.js';
import type { Scenario } from '../scenario.js';

export const rotationWave: Scenario = {
  name: 'rotation-wave',
  description: 'short-lived certs: every device renews at ~2/3 of its lifetime (or on a server hint) and the old cert stops working',
  async run(ctx) {
    let lifetimeMs = 0;
    const off = ctx.fleet.onEvent((e) => {
      if (e.type === 'enrolled') lifetimeMs = Math.max(lifetimeMs, e.lifetimeMs);
    });
    await bringUp(ctx);
    off();
    ctx.figure('certificate lifetime (s)', Math.round(lifetimeMs / 1000));
    const forced = ctx.opts.rotateAfterMs !== undefined;
    if (!forced && lifetimeMs > ctx.opts.maxLifetimeMs) {
      ctx.check('short-lived certificates', false,
        `the server issues ${Math.round(lifetimeMs / 1000)}s certs (limit ${ctx.opts.maxLifetimeMs / 1000}s): start it with CERT_LIFETIME=60s, or pass --rotate-after to force renewal`);
      return;
    }
    // every device is expected to rotate: one that never came online counts against the wave
    const online = ctx.fleet.devices;
    ctx.phase('rotation wave');
    // renewal lands in 7/12…9/12 of the lifetime; leave the rest of one lifetime plus a margin
    const budget = forced ? (ctx.opts.rotateAfterMs ?? 0) + 60_000 : lifetimeMs + 60_000;
    await waitForRotation(ctx, online, Math.min(budget, ctx.opts.timeoutMs + lifetimeMs));
    ctx.phase('after rotation');
    await ctx.sleep(Math.min(ctx.opts.holdMs, 5_000));
    const c = ctx.fleet.counts();
    ctx.check('fleet online after the wave', c.online === online.length && c.online > 0, `${c.online}/${online.length} online`);
  },
};
