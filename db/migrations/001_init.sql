-- enrolld schema v1: devices, bootstrap tokens, certificates (intent → issued → revoked), admin credentials, audit.

CREATE TABLE devices (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  profile     text NOT NULL DEFAULT 'default',
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- A token is stored only as its SHA-256; the raw value is shown once, at creation.
CREATE TABLE bootstrap_tokens (
  id          bigserial PRIMARY KEY,
  token_hash  bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  device_id   text NOT NULL REFERENCES devices(id),
  profile     text NOT NULL DEFAULT 'default',
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  -- The CSR that consumed the token: a retry with the same CSR gets the same certificate (RFC 8555 §6.5 spirit).
  csr_sha256  bytea CHECK (csr_sha256 IS NULL OR octet_length(csr_sha256) = 32),
  created_by  text NOT NULL
);
CREATE INDEX bootstrap_tokens_device_idx ON bootstrap_tokens (device_id);

CREATE SEQUENCE revocation_seq AS bigint;

-- Boulder issuance order: the row (serial + TBS) is committed before the signature exists, so every signature
-- has a row and is revocable by serial. `der` is filled in after signing.
CREATE TABLE certificates (
  serial             text PRIMARY KEY CHECK (serial ~ '^[0-9a-f]+$'),
  device_id          text NOT NULL REFERENCES devices(id),
  profile            text NOT NULL DEFAULT 'default',
  token_id           bigint REFERENCES bootstrap_tokens(id),
  predecessor_serial text REFERENCES certificates(serial),
  public_key_sha256  bytea NOT NULL,
  csr_sha256         bytea NOT NULL,
  tbs_der            bytea NOT NULL,
  der                bytea,
  not_before         timestamptz NOT NULL,
  not_after          timestamptz NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  issued_at          timestamptz,
  revoked_at         timestamptz,
  revocation_reason  smallint,
  revocation_seq     bigint UNIQUE,
  CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL) AND (revoked_at IS NULL) = (revocation_seq IS NULL))
);
CREATE UNIQUE INDEX certificates_token_idx ON certificates (token_id) WHERE token_id IS NOT NULL;
CREATE INDEX certificates_device_idx ON certificates (device_id, created_at);
CREATE INDEX certificates_public_key_idx ON certificates (public_key_sha256);
CREATE INDEX certificates_revocation_seq_idx ON certificates (revocation_seq) WHERE revocation_seq IS NOT NULL;

CREATE TABLE admin_credentials (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE,
  token_hash  bytea NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_events (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  action      text NOT NULL,
  actor       text NOT NULL,
  device_id   text,
  serial      text,
  request_id  text,
  detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_device_idx ON audit_events (device_id, at);
