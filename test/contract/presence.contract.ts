// The PresenceStore contract (core/src/fleet/ports.ts), against every implementation: a device is connected while a
// live node holds a row of it, across nodes; a node whose heartbeat expired stops counting before anyone removes it,
// and removing it (stale or in order) leaves its devices last seen; counts take a device on two nodes once.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { PresenceStore } from '@enrolld/core/fleet/ports.js';
import type { EnrollmentStore, TokenStore } from '@enrolld/core/ports.js';
import { waitFor } from '../support/wait-for.js';
import { enrollCertificate, newDeviceId } from './store-fixtures.js';

export interface PresencePorts {
  tokens: TokenStore;
  enrollment: EnrollmentStore;
  presence: PresenceStore;
}

const LONG = 60_000;

export function describePresenceStoreContract(name: string, makeStores: () => PresencePorts): void {
  describe(`${name}: presence store contract`, () => {
    async function setup(devices = 1) {
      const stores = makeStores();
      const ids: string[] = [];
      for (let i = 0; i < devices; i++) {
        const id = newDeviceId('presence');
        await enrollCertificate(stores, id);
        ids.push(id);
      }
      const node = () => `node-${randomUUID()}`;
      return { ...stores, ids, node };
    }
    const connect = (deviceId: string, at = new Date()) => ({ connected: [{ deviceId, since: at }], disconnected: [], seen: [{ deviceId, at }] });
    const disconnect = (deviceId: string, at = new Date()) => ({ connected: [], disconnected: [deviceId], seen: [{ deviceId, at }] });

    it('a device is connected while any live node holds it; last seen is its latest connect or disconnect', async () => {
      const { presence, ids, node } = await setup();
      const [a, b] = [node(), node()];
      const id = ids[0]!;
      expect(await presence.heartbeat(a, 'default', LONG)).toEqual({ registered: true });
      expect(await presence.heartbeat(a, 'default', LONG)).toEqual({ registered: false });
      await presence.heartbeat(b, 'default', LONG);
      expect((await presence.presenceOf([id])).get(id)).toEqual({ connected: false, lastSeen: null });
      const t1 = new Date(Date.now() - 3000);
      const t2 = new Date(Date.now() - 2000);
      const t3 = new Date(Date.now() - 1000);
      await presence.apply(a, connect(id, t1));
      await presence.apply(b, connect(id, t2));
      await presence.apply(a, disconnect(id, t3));
      expect((await presence.presenceOf([id])).get(id)).toEqual({ connected: true, lastSeen: t3 });
      // An older report does not move last seen back.
      await presence.apply(b, disconnect(id, t2));
      expect((await presence.presenceOf([id])).get(id)).toEqual({ connected: false, lastSeen: t3 });
      await presence.removeNode(a);
      await presence.removeNode(b);
    });

    it('a node whose heartbeat expired stops counting at once; removeStale deletes it and it registers again', async () => {
      const { presence, ids, node } = await setup(2);
      const [dead, alive] = [node(), node()];
      await presence.heartbeat(dead, 'default', 1);
      await presence.heartbeat(alive, 'default', LONG);
      await presence.apply(dead, connect(ids[0]!));
      await presence.apply(alive, connect(ids[1]!));
      await waitFor(async () => !(await presence.presenceOf([ids[0]!])).get(ids[0]!)!.connected, 5000, 'the expired node to stop counting');
      expect((await presence.presenceOf([ids[1]!])).get(ids[1]!)!.connected).toBe(true);
      expect(await presence.removeStale()).toBeGreaterThanOrEqual(1);
      expect((await presence.presenceOf([ids[0]!])).get(ids[0]!)!.lastSeen).not.toBeNull();
      // Its rows went with it: a heartbeat now registers it anew and the device is still not connected there.
      expect(await presence.heartbeat(dead, 'default', LONG)).toEqual({ registered: true });
      expect((await presence.presenceOf([ids[0]!])).get(ids[0]!)!.connected).toBe(false);
      expect((await presence.presenceOf([ids[1]!])).get(ids[1]!)!.connected).toBe(true);
      await presence.removeNode(dead);
      await presence.removeNode(alive);
    });

    it('counts take a device connected on two nodes once, by profile too; removeNode ends its devices\' presence', async () => {
      const { presence, ids, node } = await setup(2);
      const [a, b] = [node(), node()];
      await presence.heartbeat(a, 'default', LONG);
      await presence.heartbeat(b, 'default', LONG);
      const count0 = await presence.connectedCount();
      const profile0 = (await presence.connectedByProfile()).find((p) => p.profile === 'device')?.count ?? 0;
      await presence.apply(a, { connected: ids.map((deviceId) => ({ deviceId, since: new Date() })), disconnected: [], seen: [] });
      await presence.apply(b, connect(ids[0]!));
      expect(await presence.connectedCount()).toBe(count0 + 2);
      expect((await presence.connectedByProfile()).find((p) => p.profile === 'device')?.count).toBe(profile0 + 2);
      await presence.removeNode(a);
      const after = await presence.presenceOf(ids);
      expect(after.get(ids[0]!)!.connected).toBe(true);
      expect(after.get(ids[1]!)).toEqual({ connected: false, lastSeen: expect.any(Date) });
      await presence.removeNode(b);
      expect(await presence.connectedCount()).toBe(count0);
    });

    it('the connected chart: one sample per bucket however many replicas offer it, the same history for every reader, bounded', async () => {
      const { presence, ids, node } = await setup(1);
      const a = node();
      await presence.heartbeat(a, 'default', LONG);
      await presence.apply(a, connect(ids[0]!));
      const DAY = 86_400_000;
      const before = await presence.connectedHistory(2 * DAY);
      const count = await presence.connectedCount();
      // Five replicas offer the day's sample at once: only the first write of a bucket is kept (two buckets at most,
      // should the calls straddle midnight UTC).
      const wrote = (await Promise.all(Array.from({ length: 5 }, () => presence.sampleConnected(DAY, 2 * DAY)))).filter(Boolean).length;
      const after = await presence.connectedHistory(2 * DAY);
      expect(before).toEqual([]);
      expect(wrote).toBeGreaterThanOrEqual(1);
      expect(wrote).toBeLessThanOrEqual(2);
      expect(after.length - before.length).toBe(wrote);
      expect(after.at(-1)!.connected).toBe(count);
      expect(new Set(after.map((s) => Math.floor(s.at.getTime() / DAY))).size).toBe(after.length);
      expect(await presence.sampleConnected(DAY, 2 * DAY)).toBe(false);
      // Retention: the writer of a new bucket drops the samples older than retainMs.
      await waitFor(async () => (await presence.sampleConnected(1, 1)) && (await presence.connectedHistory(2 * DAY)).length === 1, 5000, 'older samples dropped');
      await presence.removeNode(a);
    });
  });
}
