// In-memory FleetEventBus (core/src/fleet/ports.ts): every bus of one hub hears every batch sent on any of them, its
// own included, asynchronously and through JSON, as NOTIFY delivers them.
import type { FleetEventBatch, FleetEventBus } from '@enrolld/core/fleet/ports.js';

export function createMemoryEventHub() {
  const listeners = new Set<(batch: FleetEventBatch) => void>();
  const sent: FleetEventBatch[] = [];
  let failing = 0;
  return {
    /** Every batch sent on the hub, in order. */
    sent,
    /** The next `sends` sends reject, as a NOTIFY statement does when Postgres is gone; nothing of them is heard. */
    failNext(sends: number) {
      failing = sends;
    },
    bus(): FleetEventBus {
      let mine: ((batch: FleetEventBatch) => void) | undefined;
      return {
        async send(batches) {
          if (failing > 0) {
            failing--;
            throw new Error('the bus is down');
          }
          for (const batch of batches) {
            const payload = JSON.stringify(batch);
            sent.push(JSON.parse(payload) as FleetEventBatch);
            for (const listener of [...listeners]) queueMicrotask(() => listener(JSON.parse(payload) as FleetEventBatch));
          }
        },
        async listen(onBatch) {
          mine = onBatch;
          listeners.add(onBatch);
        },
        async stop() {
          if (mine) listeners.delete(mine);
          mine = undefined;
        },
      };
    },
  };
}
