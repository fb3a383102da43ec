import { bringUp } from '../scenario-steps.js';
import type { Scenario } from '../scenario.js';

export const enrollStorm: Scenario = {
  name: 'enroll-storm',
  description: 'N devices enroll and connect as fast as the limits allow',
  async run(ctx) {
    await bringUp(ctx, 'enroll storm');
    ctx.phase('hold');
    await ctx.sleep(ctx.opts.holdMs);
    const c = ctx.fleet.counts();
    ctx.check('still connected after the hold', c.online === c.total, `${c.online}/${c.total} online after ${ctx.opts.holdMs / 1000}s`);
  },
};
