// The live fleet events a process relays over Postgres NOTIFY are best effort (docs/architecture.md §9b); what is not
// delivered is counted on /metrics: `enrolld_fleet_events_total{outcome}` (sent, coalesced, over-limit, send-failed)
// and `enrolld_fleet_event_send_failures_total`. The relay as the compositions wire it (compose/cluster-events.ts),
// against a real Postgres, and against one that does not answer.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createPool, FLEET_EVENTS_CHANNEL, parseFleetEventBatch } from '@enrolld/db';
import { createFleetEvents, type FleetEvent } from '@enrolld/core/fleet/live-events.js';
import { buildClusterEvents } from '../../server/src/compose/cluster-events.js';
import { createLogger } from '../../server/src/logger.js';
import { createRegistry } from '../../server/src/metrics.js';
import { metricValue } from '../support/broker-harness.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const refused = (deviceId: string): FleetEvent => ({ type: 'refused', deviceId, serial: '0a', reason: 'revoked', at: new Date().toISOString() });
const OUTCOMES = ['sent', 'coalesced', 'over-limit', 'send-failed'] as const;

describe('fleet event relay metrics', () => {
  let db: TestDatabase;
  let listener: pg.Client;
  const heard: FleetEvent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    listener.on('notification', (n) => heard.push(...(parseFleetEventBatch(n.payload ?? '')?.events ?? [])));
    await listener.query(`LISTEN ${FLEET_EVENTS_CHANNEL}`);
  });
  afterAll(async () => {
    await listener?.end();
    await db?.drop();
  });

  async function outcomes(registry: ReturnType<typeof createRegistry>) {
    return Object.fromEntries(await Promise.all(OUTCOMES.map(async (o) => [o, await metricValue(registry, 'enrolld_fleet_events_total', { outcome: o })] as const)));
  }

  it('over Postgres: repeats coalesced, distinct events past 400 per send dropped, the rest sent and heard', async () => {
    const registry = createRegistry();
    const events = createFleetEvents();
    const relay = buildClusterEvents({ database: { pool: db.pool, url: db.url }, events, logger: createLogger('silent'), registry, listen: false });
    await relay.start();
    try {
      // Every series is there before anything happened, so rate() sees the first increment.
      expect(await registry.metrics()).toContain('enrolld_fleet_events_total{outcome="over-limit"} 0');
      for (let i = 0; i < 5; i++) events.publish(refused('loop'));
      for (let i = 0; i < 404; i++) events.publish(refused(`m${i}`));
      await relay.flush();
      // 405 distinct (loop + 404), 400 of them sent; 4 repeats of loop coalesced.
      expect(await outcomes(registry)).toEqual({ sent: 400, coalesced: 4, 'over-limit': 5, 'send-failed': 0 });
      await waitFor(() => heard.length === 400, 10_000, 'the 400 sent events on the channel');
      expect(heard.find((e) => e.deviceId === 'loop')?.count).toBe(5);
      expect(await metricValue(registry, 'enrolld_fleet_event_send_failures_total')).toBe(0);
    } finally {
      await relay.stop();
    }
  });

  it('with Postgres unreachable: the failed send and its events are counted, and nothing is retried', async () => {
    const registry = createRegistry();
    const events = createFleetEvents();
    // Nothing listens on this port: every connection is refused.
    const url = `postgres://postgres@127.0.0.1:${await freePort()}/postgres`;
    const pool = createPool({ connectionString: url, max: 1 });
    const relay = buildClusterEvents({ database: { pool, url }, events, logger: createLogger('silent'), registry, listen: false });
    await relay.start();
    try {
      events.publish(refused('lost-1'));
      events.publish(refused('lost-2'));
      events.publish(refused('lost-1'));
      await relay.flush();
      expect(await outcomes(registry)).toEqual({ sent: 0, coalesced: 1, 'over-limit': 0, 'send-failed': 2 });
      expect(await metricValue(registry, 'enrolld_fleet_event_send_failures_total')).toBe(1);
      // The next flush has nothing to send: the lost events are not retried.
      await relay.flush();
      expect(await metricValue(registry, 'enrolld_fleet_event_send_failures_total')).toBe(1);
    } finally {
      await relay.stop();
      await pool.end();
    }
  });
});
