-- Revocation fan-out and CRL state (docs/architecture.md §7).

-- Every revocation takes its sequence number under one transaction-scoped advisory lock, so numbers are handed out
-- in commit order. A broker resyncing with `revocation_seq > last_seen` can then never skip a row that commits late
-- (without the lock, seq 5 could commit after seq 6 was seen, and a lost NOTIFY for 5 would never be repaired).
-- The trigger assigns the number itself, so every writer (admin revoke, rotation's `superseded`, bulk jobs) gets this
-- for free; a value the caller put in `revocation_seq` is replaced.
CREATE FUNCTION enrolld_assign_revocation_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
    PERFORM pg_advisory_xact_lock(7160002332);
    NEW.revocation_seq := nextval('revocation_seq');
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER certificates_assign_revocation_seq
  BEFORE UPDATE OF revoked_at ON certificates
  FOR EACH ROW EXECUTE FUNCTION enrolld_assign_revocation_seq();

-- NOTIFY is queued here and delivered only when (and if) the transaction commits, so a broker never cuts a session
-- for a revocation that rolled back. `at_ms` is taken as late as possible (clock_timestamp) and stands in for the
-- commit time in the enforcement-latency histogram.
CREATE FUNCTION enrolld_notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.revocation_seq IS NOT NULL AND OLD.revocation_seq IS DISTINCT FROM NEW.revocation_seq THEN
    PERFORM pg_notify('enrolld_revocation', json_build_object(
      'serial', NEW.serial,
      'deviceId', NEW.device_id,
      'seq', NEW.revocation_seq,
      'reasonCode', NEW.revocation_reason,
      'atMs', floor(extract(epoch FROM clock_timestamp()) * 1000)
    )::text);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_notify_revocation
  AFTER UPDATE OF revoked_at ON certificates
  FOR EACH ROW EXECUTE FUNCTION enrolld_notify_revocation();

-- RFC 5280 §5.2.3: the CRL number increases monotonically for a given issuer.
CREATE SEQUENCE crl_number_seq AS bigint;

-- Every CRL the issuing CA signed. The newest is served at GET /v1/crl and loaded by every broker process, which never
-- holds the CA key. `covers_seq` is the highest revocation_seq it includes: a CRL older than the newest revocation is stale.
CREATE TABLE crls (
  crl_number   bigint PRIMARY KEY,
  der          bytea NOT NULL,
  this_update  timestamptz NOT NULL,
  next_update  timestamptz NOT NULL,
  covers_seq   bigint NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION enrolld_notify_crl() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('enrolld_crl', NEW.crl_number::text);
  RETURN NULL;
END $$;

CREATE TRIGGER crls_notify
  AFTER INSERT ON crls
  FOR EACH ROW EXECUTE FUNCTION enrolld_notify_crl();

-- Serves the CRL's entry list: revoked and not yet expired (RFC 5280 §3.3 lets expired entries drop off).
CREATE INDEX certificates_revoked_unexpired_idx ON certificates (not_after) WHERE revoked_at IS NOT NULL;
