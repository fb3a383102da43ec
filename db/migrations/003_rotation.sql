-- Rotation with lineage (docs/architecture.md §8).

-- One successor per certificate, enforced by the database (ROT-05): two renewals racing with the same
-- current certificate cannot both insert a row naming it as predecessor, whatever the application does.
CREATE UNIQUE INDEX certificates_predecessor_idx ON certificates (predecessor_serial) WHERE predecessor_serial IS NOT NULL;

-- The sweep looks for live certificates by notAfter; only unrevoked issued rows matter.
CREATE INDEX certificates_live_not_after_idx ON certificates (not_after) WHERE revoked_at IS NULL AND der IS NOT NULL;

-- A renewal hint is sent at most once per certificate. BullMQ delivers at least once (a stalled or crashed worker's
-- job runs again), so the hint's effect is keyed by the serial: the INSERT … ON CONFLICT DO NOTHING that wins also
-- queues the NOTIFY, in the same transaction, and only a commit sends it (FLT-06).
CREATE TABLE rotation_hints (
  serial     text PRIMARY KEY REFERENCES certificates(serial),
  device_id  text NOT NULL REFERENCES devices(id),
  sent_at    timestamptz NOT NULL DEFAULT now()
);
