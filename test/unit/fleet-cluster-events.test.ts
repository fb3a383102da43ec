// The live-events relay across processes (core/src/fleet/cluster-events.ts) over the in-memory bus: another relay's
// events reach this process's listeners, one's own come back from the bus and are shown once, a received event is
// never sent again, and a reconnect loop is coalesced per identity and capped per flush.
import { afterEach, describe, expect, it } from '@jest/globals';
import { createClusterEvents, EVENTS_PER_BATCH, type ClusterEventOutcome, type ClusterEvents, type ClusterEventsOptions } from '@enrolld/core/fleet/cluster-events.js';
import { createFleetEvents, type FleetEvent } from '@enrolld/core/fleet/live-events.js';
import { createMemoryEventHub } from '../support/fakes/fleet-event-bus.js';
import { waitFor } from '../support/wait-for.js';

const refused = (deviceId: string | null, reason = 'revoked'): FleetEvent => ({ type: 'refused', deviceId, serial: deviceId && '0a', reason, at: '2026-01-01T00:00:00.000Z' });
const enrolled = (deviceId: string): FleetEvent => ({ type: 'enrolled', deviceId, serial: '01', at: '2026-01-01T00:00:00.000Z' });

describe('fleet events across processes', () => {
  const started: ClusterEvents[] = [];
  afterEach(async () => {
    for (const relay of started.splice(0)) await relay.stop();
  });

  type NodeOptions = { listen?: boolean; maxPerFlush?: number } & Pick<ClusterEventsOptions, 'onDropped' | 'onOutcome' | 'onSendFailed' | 'onError'>;
  async function node(hub: ReturnType<typeof createMemoryEventHub>, origin: string, options: NodeOptions = {}) {
    const events = createFleetEvents();
    const heard: FleetEvent[] = [];
    events.subscribe((e) => heard.push(e));
    // Flushed by the test only.
    const relay = createClusterEvents({ ...options, bus: hub.bus(), events, origin, flushMs: 3_600_000, maxPerFlush: options.maxPerFlush ?? 100, listen: options.listen ?? true });
    await relay.start();
    started.push(relay);
    return { events, heard, relay };
  }
  const ids = (heard: FleetEvent[]) => heard.map((e) => `${e.type}:${e.deviceId}`);

  it("another process's events reach the listeners once; one's own, heard back, are not shown twice nor sent again", async () => {
    const hub = createMemoryEventHub();
    const a = await node(hub, 'api-a');
    const b = await node(hub, 'api-b');
    const broker = await node(hub, 'broker', { listen: false });

    a.events.publish(enrolled('d1'));
    broker.events.publish(refused('d2'));
    await a.relay.flush();
    await broker.relay.flush();
    await waitFor(() => b.heard.length === 2, 5000, 'both events at b');
    expect(ids(b.heard)).toEqual(['enrolled:d1', 'refused:d2']);
    expect(b.heard[1]).toEqual(refused('d2'));

    // A marker from b, sent after a's own batch came back to a: once a hears it, a has heard its own batch too.
    b.events.publish(enrolled('marker'));
    await b.relay.flush();
    await waitFor(() => a.heard.some((e) => e.deviceId === 'marker'), 5000, 'the marker at a');
    expect(ids(a.heard)).toEqual(['enrolled:d1', 'refused:d2', 'enrolled:marker']);
    // The broker only sends: it heard nothing but its own publication.
    expect(ids(broker.heard)).toEqual(['refused:d2']);

    // What b received is not b's to send: b's next flush sends only what b published.
    const before = hub.sent.length;
    await b.relay.flush();
    expect(hub.sent.length).toBe(before);
    expect(hub.sent.map((batch) => batch.origin)).toEqual(['api-a', 'broker', 'api-b']);
  });

  it('coalesces repeats of one identity within a flush into the latest with a count', async () => {
    const hub = createMemoryEventHub();
    const broker = await node(hub, 'broker', { listen: false });
    const a = await node(hub, 'api-a');
    for (let i = 0; i < 50; i++) broker.events.publish({ ...refused('loop'), at: `2026-01-01T00:00:${String(i).padStart(2, '0')}.000Z` });
    for (let i = 0; i < 3; i++) broker.events.publish(refused(null, 'no-certificate'));
    broker.events.publish(refused('loop', 'superseded'));
    await broker.relay.flush();
    expect(hub.sent).toHaveLength(1);
    expect(hub.sent[0]!.events).toEqual([
      { ...refused('loop'), at: '2026-01-01T00:00:49.000Z', count: 50 },
      { ...refused(null, 'no-certificate'), count: 3 },
      refused('loop', 'superseded'),
    ]);
    await waitFor(() => a.heard.length === 3, 5000, 'the coalesced events at a');
    expect(a.heard[0]!.count).toBe(50);
    // The next flush starts over.
    broker.events.publish(refused('loop'));
    await broker.relay.flush();
    expect(hub.sent[1]!.events).toEqual([refused('loop')]);
  });

  it('sends at most maxPerFlush distinct events per flush, in batches of EVENTS_PER_BATCH, and counts the rest', async () => {
    const hub = createMemoryEventHub();
    const dropped: number[] = [];
    const broker = await node(hub, 'broker', { listen: false, maxPerFlush: 45, onDropped: (n) => dropped.push(n) });
    for (let i = 0; i < 60; i++) broker.events.publish(refused(`d${i}`));
    await broker.relay.flush();
    expect(hub.sent.map((b) => b.events.length)).toEqual([EVENTS_PER_BATCH, EVENTS_PER_BATCH, 45 - 2 * EVENTS_PER_BATCH]);
    expect(hub.sent.flatMap((b) => b.events).map((e) => e.deviceId)).toEqual(Array.from({ length: 45 }, (_, i) => `d${i}`));
    expect(dropped).toEqual([15]);
  });

  it('counts every published event once by where it ended (sent, coalesced, over-limit, send-failed) and every failed send', async () => {
    const hub = createMemoryEventHub();
    const outcomes: Record<ClusterEventOutcome, number> = { sent: 0, coalesced: 0, 'over-limit': 0, 'send-failed': 0 };
    let sendFailures = 0;
    const errors: unknown[] = [];
    const broker = await node(hub, 'broker', {
      listen: false,
      maxPerFlush: 5,
      onOutcome: (outcome, n) => (outcomes[outcome] += n),
      onSendFailed: () => sendFailures++,
      onError: (error) => errors.push(error),
    });
    // 3 of one identity (2 coalesced) and 6 others: 7 distinct, 5 sent, 2 over the limit.
    for (let i = 0; i < 3; i++) broker.events.publish(refused('loop'));
    for (let i = 0; i < 6; i++) broker.events.publish(refused(`d${i}`));
    await broker.relay.flush();
    expect(outcomes).toEqual({ sent: 5, coalesced: 2, 'over-limit': 2, 'send-failed': 0 });
    expect(sendFailures).toBe(0);

    // A send that fails: its 4 distinct events are lost (not retried), the repeat was coalesced before.
    hub.failNext(1);
    for (let i = 0; i < 4; i++) broker.events.publish(enrolled(`e${i}`));
    broker.events.publish(enrolled('e0'));
    await broker.relay.flush();
    expect(outcomes).toEqual({ sent: 5, coalesced: 3, 'over-limit': 2, 'send-failed': 4 });
    expect(sendFailures).toBe(1);
    expect(errors).toHaveLength(1);
    // Every published event counted exactly once.
    expect(Object.values(outcomes).reduce((a, b) => a + b, 0)).toBe(14);

    // The bus is back: the next flush sends again.
    broker.events.publish(enrolled('after'));
    await broker.relay.flush();
    expect(outcomes.sent).toBe(6);
    expect(hub.sent.flatMap((b) => b.events).map((e) => e.deviceId)).not.toContain('e1');
  });
});
