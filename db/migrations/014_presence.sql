-- Cluster-wide presence (docs/architecture.md §9b): each broker node writes which devices hold a session on it, in
-- batches, and keeps a heartbeat row. A node counts while its heartbeat has not expired: a killed broker's rows stop
-- counting at its expires_at, and the next heartbeat of any node deletes the node with its rows (ON DELETE CASCADE).
-- Last seen (the latest connect or disconnect heard) is kept apart from the devices table, so presence writes never
-- touch the rows the fleet search and enrollment read and write.
CREATE TABLE broker_nodes (
  node_id text PRIMARY KEY,
  environment text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);

CREATE TABLE device_presence (
  device_id text NOT NULL,
  node_id text NOT NULL REFERENCES broker_nodes (node_id) ON DELETE CASCADE,
  since timestamptz NOT NULL,
  PRIMARY KEY (device_id, node_id)
);
CREATE INDEX device_presence_node ON device_presence (node_id);

CREATE TABLE device_last_seen (
  device_id text PRIMARY KEY,
  seen_at timestamptz NOT NULL
);
