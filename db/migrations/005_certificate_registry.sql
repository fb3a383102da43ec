-- The admission registry every broker keeps in memory (docs/architecture.md §6, §7): which certificates of each device
-- may connect. Brokers follow revocations by `revocation_seq` (002); they follow issuance by `issue_seq`, handed out
-- when the signed certificate is stored.

CREATE SEQUENCE certificate_issue_seq AS bigint;
ALTER TABLE certificates ADD COLUMN issue_seq bigint UNIQUE;

-- Certificates signed before this migration, in the order they were stored.
UPDATE certificates c SET issue_seq = o.seq
  FROM (SELECT serial, nextval('certificate_issue_seq') AS seq
          FROM (SELECT serial FROM certificates WHERE der IS NOT NULL ORDER BY issued_at NULLS FIRST, created_at, serial) s) o
 WHERE c.serial = o.serial;

-- Like the revocation seq (002), the number is taken under a transaction-scoped advisory lock, so numbers follow commit
-- order and a resync by `issue_seq > last_seen` never skips a late commit. Its own key (not the revocation lock, which
-- renewals hold shared), taken by one short statement: storing a signature. Every writer gets it from the trigger, and
-- a value the caller put in `issue_seq` is replaced.
CREATE FUNCTION enrolld_assign_issue_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.der IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.der IS NULL) THEN
    PERFORM pg_advisory_xact_lock(7160002335);
    NEW.issue_seq := nextval('certificate_issue_seq');
  ELSIF TG_OP = 'UPDATE' THEN
    NEW.issue_seq := OLD.issue_seq;
  ELSE
    NEW.issue_seq := NULL;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER certificates_assign_issue_seq
  BEFORE INSERT OR UPDATE OF der, issue_seq ON certificates
  FOR EACH ROW EXECUTE FUNCTION enrolld_assign_issue_seq();

-- Delivered on commit only, like the revocation NOTIFY: a broker never admits a certificate whose storage rolled back.
CREATE FUNCTION enrolld_notify_issued() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.issue_seq IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.issue_seq IS DISTINCT FROM NEW.issue_seq) THEN
    PERFORM pg_notify('enrolld_certificate', json_build_object(
      'serial', NEW.serial,
      'deviceId', NEW.device_id,
      'seq', NEW.issue_seq,
      'notAfterMs', floor(extract(epoch FROM NEW.not_after) * 1000),
      'predecessorSerial', NEW.predecessor_serial
    )::text);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER certificates_notify_issued
  AFTER INSERT OR UPDATE OF der, issue_seq ON certificates
  FOR EACH ROW EXECUTE FUNCTION enrolld_notify_issued();

-- The snapshot and the per-device lookup: a device's live certificates, newest first.
CREATE INDEX certificates_device_issue_idx ON certificates (device_id, issue_seq DESC) WHERE issue_seq IS NOT NULL;
