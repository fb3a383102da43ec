// Cluster-wide presence (core/src/fleet/ports.ts PresenceStore; db/migrations/014_presence.sql). A node's batch of
// changes is one statement; a device is connected while a row of it belongs to a node whose heartbeat has not expired,
// so a killed broker's devices stop counting at its expires_at even before any node deletes its rows.
import type pg from 'pg';
import type { DevicePresence, PresenceChanges, PresenceStore } from '@enrolld/core/fleet/ports.js';

/** The condition "device `alias` is connected on a live node", shared with the fleet search (fleet-store.ts). */
export const CONNECTED_NOW = (alias: string) => `EXISTS (SELECT 1 FROM device_presence p JOIN broker_nodes n ON n.node_id = p.node_id
                    WHERE p.device_id = ${alias} AND n.expires_at > now())`;

// The batch travels as JSON ([device id, epoch ms] pairs and a list of ids): one string the driver passes as it is,
// where text[] and timestamptz[] parameters cost the broker an escaped element and a formatted date per device.
const APPLY = `
  WITH up AS (
    INSERT INTO device_presence (device_id, node_id, since)
    SELECT e->>0, $1, to_timestamp((e->>1)::float8 / 1000) FROM json_array_elements($2::json) AS e
    ON CONFLICT (device_id, node_id) DO UPDATE SET since = EXCLUDED.since),
  gone AS (
    DELETE FROM device_presence WHERE node_id = $1 AND device_id IN (SELECT json_array_elements_text($3::json)))
  INSERT INTO device_last_seen (device_id, seen_at)
  SELECT t.d, t.a FROM (SELECT e->>0 AS d, to_timestamp((e->>1)::float8 / 1000) AS a FROM json_array_elements($4::json) AS e) AS t
   WHERE EXISTS (SELECT 1 FROM devices WHERE id = t.d)
  ON CONFLICT (device_id) DO UPDATE SET seen_at = GREATEST(device_last_seen.seen_at, EXCLUDED.seen_at)`;

// The devices of the removed nodes were last seen at their node's last heartbeat (a node that stops in order: now).
const REMOVE_NODES = (where: string, seenAt: string) => `
  WITH gone AS (DELETE FROM broker_nodes WHERE ${where} RETURNING node_id, heartbeat_at),
  seen AS (
    INSERT INTO device_last_seen (device_id, seen_at)
    SELECT p.device_id, max(${seenAt}) FROM device_presence p JOIN gone g ON g.node_id = p.node_id
     WHERE EXISTS (SELECT 1 FROM devices WHERE id = p.device_id) GROUP BY p.device_id
    ON CONFLICT (device_id) DO UPDATE SET seen_at = GREATEST(device_last_seen.seen_at, EXCLUDED.seen_at))
  SELECT count(*)::int AS n FROM gone`;

// Last seen references devices (015): a deleted device's connect or disconnect still in a batch is skipped, not a
// foreign-key error that would fail the node's whole batch again and again.

// The bucket is taken from the database's clock, so replicas whose clocks differ still agree on it. The count is
// computed only when the bucket is still empty; two replicas racing on it both count, and the first insert wins.
const SAMPLE = `
  WITH b AS (SELECT to_timestamp(floor(extract(epoch FROM now()) * 1000 / $1) * $1 / 1000) AS bucket),
  ins AS (
    INSERT INTO connected_samples (bucket, connected)
    SELECT b.bucket, (SELECT count(DISTINCT p.device_id) FROM device_presence p JOIN broker_nodes n ON n.node_id = p.node_id
                       WHERE n.expires_at > now())
      FROM b WHERE NOT EXISTS (SELECT 1 FROM connected_samples s WHERE s.bucket = b.bucket)
    ON CONFLICT (bucket) DO NOTHING RETURNING bucket),
  old AS (
    DELETE FROM connected_samples WHERE EXISTS (SELECT 1 FROM ins) AND bucket < now() - make_interval(secs => $2::double precision / 1000))
  SELECT count(*)::int AS n FROM ins`;

export function createPgPresenceStore(pool: pg.Pool): PresenceStore {
  return {
    async heartbeat(nodeId, environment, ttlMs) {
      const { rows } = await pool.query<{ registered: boolean }>(
        `INSERT INTO broker_nodes (node_id, environment, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000))
         ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at
         RETURNING (xmax = 0) AS registered`,
        [nodeId, environment, ttlMs],
      );
      return { registered: rows[0]!.registered };
    },

    async apply(nodeId, changes: PresenceChanges) {
      if (changes.connected.length + changes.disconnected.length + changes.seen.length === 0) return;
      await pool.query(APPLY, [
        nodeId,
        JSON.stringify(changes.connected.map((c) => [c.deviceId, c.since.getTime()])),
        JSON.stringify(changes.disconnected),
        JSON.stringify(changes.seen.map((s) => [s.deviceId, s.at.getTime()])),
      ]);
    },

    async removeStale() {
      const { rows } = await pool.query<{ n: number }>(REMOVE_NODES('expires_at <= now()', 'g.heartbeat_at'));
      return rows[0]!.n;
    },

    async removeNode(nodeId) {
      await pool.query(REMOVE_NODES('node_id = $1', 'now()'), [nodeId]);
    },

    async presenceOf(deviceIds) {
      const { rows } = await pool.query<{ id: string; connected: boolean; seen_at: Date | null }>(
        `SELECT i.id, ${CONNECTED_NOW('i.id')} AS connected, s.seen_at
           FROM unnest($1::text[]) AS i(id) LEFT JOIN device_last_seen s ON s.device_id = i.id`,
        [deviceIds],
      );
      return new Map(rows.map((r): [string, DevicePresence] => [r.id, { connected: r.connected, lastSeen: r.seen_at }]));
    },

    async connectedCount() {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(DISTINCT p.device_id)::int AS n FROM device_presence p JOIN broker_nodes n ON n.node_id = p.node_id WHERE n.expires_at > now()`,
      );
      return rows[0]!.n;
    },

    async sampleConnected(bucketMs, retainMs) {
      const { rows } = await pool.query<{ n: number }>(SAMPLE, [bucketMs, retainMs]);
      return rows[0]!.n > 0;
    },

    async connectedHistory(sinceMs) {
      const { rows } = await pool.query<{ sampled_at: Date; connected: number }>(
        `SELECT sampled_at, connected FROM connected_samples WHERE bucket >= now() - make_interval(secs => $1::double precision / 1000) ORDER BY bucket`,
        [sinceMs],
      );
      return rows.map((r) => ({ at: r.sampled_at, connected: r.connected }));
    },

    async connectedByProfile() {
      const { rows } = await pool.query<{ profile: string; count: number }>(
        `SELECT d.profile, count(*)::int AS count FROM devices d WHERE ${CONNECTED_NOW('d.id')} GROUP BY d.profile ORDER BY d.profile`,
      );
      return rows;
    },
  };
}
