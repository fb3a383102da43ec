// In-memory PresenceStore (core/src/fleet/ports.ts), with the rules of db/src/presence-store.ts: a node's rows count
// while its heartbeat has not expired by the injected clock; removing a node removes its rows.
import type { Clock } from '@enrolld/core/clock.js';
import type { DevicePresence, PresenceStore } from '@enrolld/core/fleet/ports.js';

export function createMemoryPresenceStore(clock: Clock, profileOf: (deviceId: string) => string | undefined = () => undefined): PresenceStore {
  const nodes = new Map<string, { expiresAt: number; heartbeatAt: number }>();
  /** `${nodeId}\n${deviceId}` → since */
  const rows = new Map<string, { nodeId: string; deviceId: string; since: Date }>();
  const lastSeen = new Map<string, Date>();
  /** bucket start (ms) → when sampled and the count */
  const samples = new Map<number, { at: number; connected: number }>();
  const now = () => clock.now().getTime();
  const see = (deviceId: string, at: Date) => {
    const known = lastSeen.get(deviceId);
    if (!known || known < at) lastSeen.set(deviceId, at);
  };
  const live = (nodeId: string) => (nodes.get(nodeId)?.expiresAt ?? 0) > now();
  const connectedIds = () => new Set([...rows.values()].filter((r) => live(r.nodeId)).map((r) => r.deviceId));
  function remove(nodeId: string, seenAt: Date): void {
    nodes.delete(nodeId);
    for (const [key, row] of rows) {
      if (row.nodeId !== nodeId) continue;
      rows.delete(key);
      see(row.deviceId, seenAt);
    }
  }
  return {
    async heartbeat(nodeId, _environment, ttlMs) {
      const registered = !nodes.has(nodeId);
      nodes.set(nodeId, { heartbeatAt: now(), expiresAt: now() + ttlMs });
      return { registered };
    },
    async apply(nodeId, changes) {
      if (!nodes.has(nodeId) && changes.connected.length > 0) throw new Error(`presence of an unknown node ${nodeId} (foreign key)`);
      for (const c of changes.connected) rows.set(`${nodeId}\n${c.deviceId}`, { nodeId, deviceId: c.deviceId, since: c.since });
      for (const id of changes.disconnected) rows.delete(`${nodeId}\n${id}`);
      for (const s of changes.seen) see(s.deviceId, s.at);
    },
    async removeStale() {
      const stale = [...nodes].filter(([id]) => !live(id));
      for (const [id, n] of stale) remove(id, new Date(n.heartbeatAt));
      return stale.length;
    },
    async removeNode(nodeId) {
      remove(nodeId, clock.now());
    },
    async presenceOf(deviceIds) {
      const connected = connectedIds();
      return new Map(deviceIds.map((id): [string, DevicePresence] => [id, { connected: connected.has(id), lastSeen: lastSeen.get(id) ?? null }]));
    },
    async connectedCount() {
      return connectedIds().size;
    },
    async sampleConnected(bucketMs, retainMs) {
      const bucket = Math.floor(now() / bucketMs) * bucketMs;
      if (samples.has(bucket)) return false;
      samples.set(bucket, { at: now(), connected: connectedIds().size });
      for (const at of samples.keys()) if (at < now() - retainMs) samples.delete(at);
      return true;
    },
    async connectedHistory(sinceMs) {
      return [...samples]
        .filter(([bucket]) => bucket >= now() - sinceMs)
        .sort(([a], [b]) => a - b)
        .map(([, s]) => ({ at: new Date(s.at), connected: s.connected }));
    },
    async connectedByProfile() {
      const counts = new Map<string, number>();
      for (const id of connectedIds()) {
        const profile = profileOf(id);
        if (profile !== undefined) counts.set(profile, (counts.get(profile) ?? 0) + 1);
      }
      return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([profile, count]) => ({ profile, count }));
    },
  };
}
