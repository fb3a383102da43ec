// The console's live events across the processes of one database (docs/architecture.md §9b): every API (`enrolld api`,
// `enrolld up`) sends its events and hears the others'; a standalone `enrolld broker` only sends its connections,
// disconnections and refusals.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createPgFleetEventBus } from '@enrolld/db';
import { createClusterEvents, type ClusterEvents } from '@enrolld/core/fleet/cluster-events.js';
import type { FleetEvents } from '@enrolld/core/fleet/live-events.js';
import { createFleetEventRelayMetrics } from '../metrics.js';
import type { Database } from './database.js';

/** How often a process sends its events: also the window within which one identity's repeats are coalesced. */
const FLUSH_MS = 500;
/** Distinct events a process sends per flush at most (a storm of refusals from many identities). */
const MAX_PER_FLUSH = 400;

export function buildClusterEvents(deps: {
  database: Pick<Database, 'pool' | 'url'>;
  events: FleetEvents;
  logger: Logger;
  registry: Registry;
  listen: boolean;
  stopping?: AbortSignal | undefined;
}): ClusterEvents {
  const log = deps.logger.child({ component: 'fleet-events' });
  const metrics = createFleetEventRelayMetrics(deps.registry);
  let lastLogAt = 0;
  const rarely = (fn: () => void) => {
    // One line per 30 s: live events are best effort, and a storm must not turn into a storm of log lines. Once shutdown
    // began, a lost feed is the database stopping too.
    if (deps.stopping?.aborted || Date.now() - lastLogAt < 30_000) return;
    lastLogAt = Date.now();
    fn();
  };
  return createClusterEvents({
    bus: createPgFleetEventBus({
      pool: deps.database.pool,
      connectionString: deps.database.url,
      applicationName: 'enrolld-fleet-events',
      onConnection: (connected, error) => {
        if (!connected) rarely(() => log.warn({ err: error instanceof Error ? error.message : String(error) }, 'fleet events feed lost; reconnecting'));
      },
    }),
    events: deps.events,
    origin: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    flushMs: FLUSH_MS,
    maxPerFlush: MAX_PER_FLUSH,
    listen: deps.listen,
    onError: (error) => rarely(() => log.warn({ err: error instanceof Error ? error.message : String(error) }, 'sending fleet events failed; dropped')),
    onDropped: (dropped) => rarely(() => log.warn({ dropped }, 'fleet events over the per-flush limit dropped')),
    onOutcome: (outcome, events) => metrics.events.inc({ outcome }, events),
    onSendFailed: () => metrics.sendFailures.inc(),
  });
}
