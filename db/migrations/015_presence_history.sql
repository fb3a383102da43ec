-- Presence follow-ups (docs/architecture.md §9b).
-- Last seen belongs to a device: deleting the device deletes it. Rows of identities that no longer exist go first.
DELETE FROM device_last_seen s WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.id = s.device_id);
ALTER TABLE device_last_seen
  ADD CONSTRAINT device_last_seen_device_fkey FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE;

-- The console's connected-devices chart, one row per time bucket for the whole cluster: every API replica tries to
-- write the bucket it is in and the first one wins (ON CONFLICT DO NOTHING), so every replica draws the same history,
-- and a replica started a minute ago draws the last hour too. The writer of a bucket deletes rows past the retention.
-- sampled_at is when the count was taken (the chart's x), bucket only what makes it one per interval.
CREATE TABLE connected_samples (
  bucket timestamptz PRIMARY KEY,
  sampled_at timestamptz NOT NULL DEFAULT now(),
  connected integer NOT NULL CHECK (connected >= 0)
);
