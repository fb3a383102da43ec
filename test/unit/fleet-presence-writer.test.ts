// The broker node's presence writer (core/src/fleet/presence.ts) over the in-memory presence store: connections are
// noted in memory and written in one batch per flush; a device with two sessions (a takeover) stays connected until
// the last closes; a failed write is retried whole; a node whose row was removed writes its whole state again.
import { describe, expect, it } from '@jest/globals';
import type { PresenceChanges, PresenceStore } from '@enrolld/core/fleet/ports.js';
import { createPresenceWriter } from '@enrolld/core/fleet/presence.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createMemoryPresenceStore } from '../support/fakes/presence.js';

function setup() {
  const clock = createManualClock(new Date('2026-01-01T00:00:00Z'));
  const store = createMemoryPresenceStore(clock);
  const applied: PresenceChanges[] = [];
  let failNext = false;
  const recording: PresenceStore = {
    ...store,
    async apply(nodeId, changes) {
      if (failNext) {
        failNext = false;
        throw new Error('connection lost');
      }
      applied.push(changes);
      return store.apply(nodeId, changes);
    },
  };
  const errors: unknown[] = [];
  const writer = createPresenceWriter({
    store: recording, nodeId: 'n1', environment: 'default', flushMs: 3_600_000, heartbeatMs: 3_600_000, staleAfterMs: 15_000,
    now: () => clock.now(), onError: (e) => errors.push(e),
  });
  return { clock, store, writer, applied, errors, failOnce: () => (failNext = true) };
}

describe('presence writer', () => {
  it('writes a burst of connections in one batch, and nothing when nothing changed', async () => {
    const { writer, store, applied } = setup();
    await writer.start();
    await writer.flush(); // the first flush after registering writes the (empty) state
    applied.length = 0;
    for (let i = 0; i < 500; i++) writer.connected(`d${i}`);
    await writer.flush();
    expect(applied).toHaveLength(1);
    expect(applied[0]!.connected).toHaveLength(500);
    expect(await store.connectedCount()).toBe(500);
    await writer.flush();
    expect(applied).toHaveLength(1);
    await writer.stop();
    expect(await store.connectedCount()).toBe(0);
  });

  it('keeps a device with two sessions connected until the last closes; last seen is the close', async () => {
    const { writer, store, clock } = setup();
    await writer.start();
    writer.connected('a');
    clock.advance(1000);
    writer.connected('a'); // takeover: the new session before the old one closes
    writer.disconnected('a');
    await writer.flush();
    expect((await store.presenceOf(['a'])).get('a')).toEqual({ connected: true, lastSeen: new Date('2026-01-01T00:00:01Z') });
    clock.advance(1000);
    writer.disconnected('a');
    await writer.flush();
    expect((await store.presenceOf(['a'])).get('a')).toEqual({ connected: false, lastSeen: new Date('2026-01-01T00:00:02Z') });
  });

  it('a failed write is retried whole with the next; a node removed meanwhile writes its whole state again', async () => {
    const { writer, store, errors, failOnce } = setup();
    await writer.start();
    writer.connected('a');
    writer.connected('b');
    failOnce();
    await writer.flush();
    expect(errors).toHaveLength(1);
    expect(await store.connectedCount()).toBe(0);
    await writer.flush();
    expect(await store.connectedCount()).toBe(2);
    // Another node judged this one stale and removed it with its rows: the next heartbeat registers it again.
    await store.removeNode('n1');
    expect(await store.connectedCount()).toBe(0);
    await writer.heartbeat();
    await writer.flush();
    expect(await store.connectedCount()).toBe(2);
  });
});
