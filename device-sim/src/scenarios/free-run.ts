import { bringUp } from '../scenario-steps.js';
import type { Scenario } from '../scenario.js';

export const freeRun: Scenario = {
  name: 'run',
  description: 'enroll, connect and publish for --duration; renew and reconnect as devices do',
  async run(ctx) {
    await bringUp(ctx);
    ctx.phase('publish');
    await ctx.sleep(ctx.opts.durationMs);
  },
};
