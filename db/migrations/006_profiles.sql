-- Certificate profiles (docs/architecture.md §5): named and versioned. Each version is an immutable row; an update
-- adds the next version, a delete marks every version deleted (numbering goes on if the name is created again).
-- The document is the profile as the admin API takes it (protocol/src/profiles.ts), kept as JSON so later members
-- (per-profile broker limits) need no migration.
CREATE TABLE profiles (
  name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  version     integer NOT NULL CHECK (version > 0),
  kind        text NOT NULL CHECK (kind IN ('device', 'service')),
  document    jsonb NOT NULL,
  builtin     boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  deleted_at  timestamptz,
  PRIMARY KEY (name, version)
);

-- The two built-in profiles (core/src/acl/builtin-profiles.ts holds the same documents).
INSERT INTO profiles (name, version, kind, document, builtin, created_by) VALUES
  ('device', 1, 'device', '{"name":"device","kind":"device","description":"A device: publish and subscribe under its own devices/<id>/ only","acl":[{"effect":"allow","action":"publish","filter":"devices/{id}/#"},{"effect":"allow","action":"subscribe","filter":"devices/{id}/#"}]}', true, 'migration'),
  ('service', 1, 'service', '{"name":"service","kind":"service","description":"A backend service: reads all telemetry and command acknowledgements, sends commands","acl":[{"effect":"allow","action":"subscribe","filter":"devices/+/telemetry"},{"effect":"allow","action":"subscribe","filter":"devices/+/commands/ack"},{"effect":"allow","action":"publish","filter":"devices/+/commands"}]}', true, 'migration');

-- Every identity has a kind, fixed by its first record: a device never becomes a service and the other way round.
ALTER TABLE devices ADD COLUMN kind text NOT NULL DEFAULT 'device' CHECK (kind IN ('device', 'service'));

-- The profile `default` of earlier versions is the built-in `device` profile.
UPDATE devices SET profile = 'device' WHERE profile = 'default';
UPDATE bootstrap_tokens SET profile = 'device' WHERE profile = 'default';
UPDATE certificates SET profile = 'device' WHERE profile = 'default';
ALTER TABLE devices ALTER COLUMN profile SET DEFAULT 'device';
ALTER TABLE bootstrap_tokens ALTER COLUMN profile SET DEFAULT 'device';
ALTER TABLE certificates ALTER COLUMN profile SET DEFAULT 'device';

-- What each certificate was issued as: its identity's kind and the profile version written into it.
ALTER TABLE certificates
  ADD COLUMN identity_kind text NOT NULL DEFAULT 'device' CHECK (identity_kind IN ('device', 'service')),
  ADD COLUMN profile_version integer NOT NULL DEFAULT 1;
-- The in-use check of a profile delete.
CREATE INDEX certificates_profile_idx ON certificates (profile) WHERE revoked_at IS NULL;

-- Brokers reload a profile when it changes; delivered on commit only.
CREATE FUNCTION enrolld_notify_profile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('enrolld_profile', NEW.name);
  RETURN NULL;
END $$;

CREATE TRIGGER profiles_notify
  AFTER INSERT OR UPDATE ON profiles
  FOR EACH ROW EXECUTE FUNCTION enrolld_notify_profile();
