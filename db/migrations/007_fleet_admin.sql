-- Fleet administration (docs/architecture.md §9a): a tamper-evident audit trail and bulk revocation jobs.

-- The audit trail becomes a hash chain. Each row gets a gapless chain_seq and
--   hash = sha256(prev_hash || content), prev_hash = hash of the row at chain_seq - 1 (32 zero bytes for the first),
-- where content is enrolld_audit_content() of the row. Altering, inserting or deleting a row breaks the chain at that row.
-- Rows are chained by a deferred constraint trigger, i.e. at COMMIT, under a transaction-scoped advisory lock: every
-- writer (CTEs included) is chained without knowing it, appenders are serialised only for the moment of their commit,
-- and the lock is taken after every other lock of the transaction, so it cannot deadlock with the revocation or issue
-- locks. Chain order is commit order.
ALTER TABLE audit_events ADD COLUMN chain_seq bigint UNIQUE;
ALTER TABLE audit_events ADD COLUMN prev_hash bytea;
ALTER TABLE audit_events ADD COLUMN hash bytea;

-- The bytes a row's hash covers: a JSON array of its fields (jsonb's text form is canonical: sorted keys, no spaces
-- that vary), the time in UTC with microseconds, so the encoding does not depend on the session's TimeZone.
CREATE FUNCTION enrolld_audit_content(chain_seq bigint, id bigint, at timestamptz, action text, actor text, device_id text,
                                      serial text, request_id text, detail jsonb) RETURNS bytea
LANGUAGE sql STABLE AS $$
  SELECT convert_to(jsonb_build_array(chain_seq, id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                                      action, actor, device_id, serial, request_id, detail)::text, 'UTF8')
$$;

CREATE FUNCTION enrolld_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  last_seq  bigint;
  last_hash bytea;
  row_seq   bigint;
  row_prev  bytea;
BEGIN
  -- 7160002340 is AUDIT_CHAIN_LOCK_KEY in db/src/transaction.ts.
  PERFORM pg_advisory_xact_lock(7160002340);
  SELECT e.chain_seq, e.hash INTO last_seq, last_hash
    FROM audit_events e WHERE e.chain_seq IS NOT NULL ORDER BY e.chain_seq DESC LIMIT 1;
  row_seq := COALESCE(last_seq, 0) + 1;
  row_prev := COALESCE(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
  UPDATE audit_events SET chain_seq = row_seq, prev_hash = row_prev,
         hash = sha256(row_prev || enrolld_audit_content(row_seq, NEW.id, NEW.at, NEW.action, NEW.actor, NEW.device_id,
                                                         NEW.serial, NEW.request_id, NEW.detail))
   WHERE id = NEW.id;
  RETURN NULL;
END $$;

-- Rows written before this migration are chained in id order.
DO $$
DECLARE
  r record;
  seq bigint := 0;
  prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
  h bytea;
BEGIN
  FOR r IN SELECT * FROM audit_events ORDER BY id LOOP
    seq := seq + 1;
    h := sha256(prev || enrolld_audit_content(seq, r.id, r.at, r.action, r.actor, r.device_id, r.serial, r.request_id, r.detail));
    UPDATE audit_events SET chain_seq = seq, prev_hash = prev, hash = h WHERE id = r.id;
    prev := h;
  END LOOP;
END $$;

CREATE CONSTRAINT TRIGGER audit_events_chain
  AFTER INSERT ON audit_events
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION enrolld_audit_chain();

CREATE INDEX audit_events_action_idx ON audit_events (action, chain_seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, chain_seq);

-- Bulk revocation (POST /v1/admin/revocations): the job's selector, its frozen target list and its progress. The
-- targets are resolved once, when the job is created, so a job that resumes after a crash works through the same list.
-- A target is revoked by revokeCertificates, which skips what is already revoked, then marked processed: a job run again
-- after a crash between the two revokes nothing twice and skips nothing.
CREATE TABLE bulk_revocations (
  id            text PRIMARY KEY,
  selector      jsonb NOT NULL,
  reason        text NOT NULL,
  actor         text NOT NULL,
  request_id    text,
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  total         integer NOT NULL,
  done          integer NOT NULL DEFAULT 0,
  revoked       integer NOT NULL DEFAULT 0,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz
);

CREATE TABLE bulk_revocation_targets (
  job_id      text NOT NULL REFERENCES bulk_revocations(id) ON DELETE CASCADE,
  position    integer NOT NULL,
  serial      text NOT NULL,
  device_id   text NOT NULL,
  processed   boolean NOT NULL DEFAULT false,
  PRIMARY KEY (job_id, position)
);
CREATE INDEX bulk_revocation_targets_pending_idx ON bulk_revocation_targets (job_id, position) WHERE NOT processed;
-- A job's audit rows carry request_id 'bulk:<id>': its `revoked` count is read from them, so it stays exact across a crash.
CREATE INDEX audit_events_request_idx ON audit_events (request_id) WHERE request_id IS NOT NULL;
