-- Admins by certificate (docs/architecture.md §9c). An admin is an identity of a third kind, `admin`
-- (urn:enrolld:admin:<name>), in the one namespace of devices and services; its certificates are rows of `certificates`
-- like any other, issued under the built-in `admin` profile, revoked and listed on the CRL the same way. Its role is
-- kept here, not in the certificate, so a role change takes effect at the next request and needs no new certificate.
ALTER TABLE devices DROP CONSTRAINT devices_kind_check;
ALTER TABLE devices ADD CONSTRAINT devices_kind_check CHECK (kind IN ('device', 'service', 'admin'));
ALTER TABLE certificates DROP CONSTRAINT certificates_identity_kind_check;
ALTER TABLE certificates ADD CONSTRAINT certificates_identity_kind_check CHECK (identity_kind IN ('device', 'service', 'admin'));
ALTER TABLE profiles DROP CONSTRAINT profiles_kind_check;
ALTER TABLE profiles ADD CONSTRAINT profiles_kind_check CHECK (kind IN ('device', 'service', 'admin'));

-- A profile the admins made with this name would be taken for the built-in one: stop with what to do instead.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM profiles WHERE name = 'admin' AND deleted_at IS NULL) THEN
    RAISE EXCEPTION 'a profile named "admin" exists; the built-in admin profile needs the name: delete it (enrolld profile delete admin) and migrate again';
  END IF;
END $$;

-- The profile of every admin certificate (core/src/acl/builtin-profiles.ts holds the same document). No topic is
-- granted: the broker refuses admin certificates before it reads a profile.
INSERT INTO profiles (name, version, kind, document, builtin, created_by) VALUES
  ('admin', (SELECT COALESCE(max(version), 0) + 1 FROM profiles WHERE name = 'admin'), 'admin', '{"name":"admin","kind":"admin","description":"An admin of the admin API: no MQTT access","acl":[]}', true, 'migration');

-- One row per admin. `revoked_at` is set by `enrolld admin revoke` (its certificates are revoked in the same call);
-- the row stays for the record, and `enrolld admin create` of the same name makes it active again.
CREATE TABLE admins (
  name        text PRIMARY KEY REFERENCES devices(id),
  role        text NOT NULL CHECK (role IN ('viewer', 'operator', 'owner')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL,
  revoked_at  timestamptz
);
