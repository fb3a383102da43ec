-- Environments (docs/architecture.md §5): each has its own issuing CA, under the shared root or a root of its own, and
-- every identity (with its tokens and certificates) and every profile belongs to exactly one. `default` exists from here
-- on and holds every row written before, so nothing changes for an installation that never makes another.

-- The public chain of each environment is recorded here, so a broker on another host reads what it trusts from the
-- database and needs no CA file; the private keys stay 0600 files in the ENROLLD_HOME of the API (server/src/compose/
-- pki-home.ts). The chain of `default` is the home's own CA, recorded by the API when it starts (its CA is older than
-- this table). A deleted environment keeps its row: its certificates, tokens and CRLs still name it, and the name is
-- not given out again.
CREATE TABLE environments (
  name                text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  own_root            boolean NOT NULL DEFAULT false,
  issuing_certificate text,
  root_certificate    text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  created_by          text NOT NULL,
  deleted_at          timestamptz,
  CHECK (name = 'default' OR (issuing_certificate IS NOT NULL AND root_certificate IS NOT NULL)),
  CHECK (name <> 'default' OR deleted_at IS NULL)
);
INSERT INTO environments (name, created_by) VALUES ('default', 'migration');

-- An identity's environment is fixed by its first record, like its kind. Its tokens and certificates carry the same
-- environment, which the composite keys make a database fact: a certificate can only be in its device's environment.
ALTER TABLE devices ADD COLUMN environment text NOT NULL DEFAULT 'default' REFERENCES environments (name);
ALTER TABLE devices ADD CONSTRAINT devices_id_environment_key UNIQUE (id, environment);

ALTER TABLE bootstrap_tokens ADD COLUMN environment text NOT NULL DEFAULT 'default';
ALTER TABLE bootstrap_tokens ADD CONSTRAINT bootstrap_tokens_device_environment_fkey
  FOREIGN KEY (device_id, environment) REFERENCES devices (id, environment);

ALTER TABLE certificates ADD COLUMN environment text NOT NULL DEFAULT 'default';
ALTER TABLE certificates ADD CONSTRAINT certificates_device_environment_fkey
  FOREIGN KEY (device_id, environment) REFERENCES devices (id, environment);
-- Each environment's CRL is rebuilt when its own revocations move (RFC 5280 §5: a CRL per issuing CA).
CREATE INDEX certificates_environment_revocation_idx ON certificates (environment, revocation_seq) WHERE revocation_seq IS NOT NULL;
-- The delete check of an environment: its unrevoked certificates.
CREATE INDEX certificates_environment_live_idx ON certificates (environment, not_after) WHERE revoked_at IS NULL;

-- A CRL per issuing CA. Numbers still come from one sequence: they rise for every issuer (RFC 5280 §5.2.3), with gaps.
ALTER TABLE crls ADD COLUMN environment text NOT NULL DEFAULT 'default' REFERENCES environments (name);
CREATE INDEX crls_environment_idx ON crls (environment, crl_number DESC);

-- Profile names are per environment; the built-in `device` and `service` are in every one (the API copies them when it
-- creates an environment).
ALTER TABLE profiles ADD COLUMN environment text NOT NULL DEFAULT 'default' REFERENCES environments (name);
ALTER TABLE profiles DROP CONSTRAINT profiles_pkey;
ALTER TABLE profiles ADD PRIMARY KEY (environment, name, version);

-- A broker follows only its own environment's profiles: the change names both.
CREATE OR REPLACE FUNCTION enrolld_notify_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('enrolld_profile', json_build_object('environment', NEW.environment, 'name', NEW.name)::text);
  RETURN NULL;
END $$;
