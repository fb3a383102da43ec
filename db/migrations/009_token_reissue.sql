-- How each bootstrap token was issued: for an id with no certificate yet (new), for one that had certificates (re-issued;
-- a live one needs the admin's explicit replace), or after its certificates were revoked for keyCompromise
-- (after-compromise, an explicit consent too). The certificate a token enrolls points at it (certificates.token_id), so
-- an enrollment after a compromise is recorded as one.
ALTER TABLE bootstrap_tokens
  ADD COLUMN issued_as text NOT NULL DEFAULT 'new' CHECK (issued_as IN ('new', 're-issued', 'after-compromise')),
  ADD COLUMN withdrawn_at timestamptz;

-- A keyCompromise revocation (RFC 5280 §5.3.1 reason 1) withdraws the device's unspent tokens made before it: a token
-- handed out before the key was lost must not enroll a fresh certificate for the same id. Withdrawn tokens end at the
-- revocation, so the enrollment check (expires_at > now()) refuses them like any expired token.
CREATE FUNCTION withdraw_tokens_on_key_compromise() RETURNS trigger AS $$
BEGIN
  UPDATE bootstrap_tokens
     SET withdrawn_at = NEW.revoked_at, expires_at = NEW.revoked_at
   WHERE device_id = NEW.device_id AND used_at IS NULL AND withdrawn_at IS NULL
     AND created_at <= NEW.revoked_at AND expires_at > NEW.revoked_at;
  RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER certificates_key_compromise_withdraws_tokens
  AFTER UPDATE OF revoked_at ON certificates
  FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revocation_reason = 1)
  EXECUTE FUNCTION withdraw_tokens_on_key_compromise();
