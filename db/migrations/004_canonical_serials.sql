-- One canonical serial form (protocol/src/serial.ts): lowercase hex of the minimal DER INTEGER content octets
-- (RFC 5280 §4.1.2.2), so lookups and lineage joins are plain equality. Rows written in another spelling (upper case,
-- leading zeros dropped or added) are rewritten, with every column that names them. Two spellings of one number
-- would be one certificate twice; the primary key refuses that rather than merging them.

CREATE FUNCTION pg_temp.canonical_serial(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN left(even, 1) IN ('8', '9', 'a', 'b', 'c', 'd', 'e', 'f') THEN '00' || even ELSE even END
    FROM (SELECT CASE WHEN length(bare) % 2 = 1 THEN '0' || bare ELSE bare END AS even
            FROM (SELECT ltrim(lower(s), '0') AS bare) b) e
$$;

-- The foreign keys that name a serial are not deferrable: lift them while both sides are rewritten.
ALTER TABLE certificates DROP CONSTRAINT certificates_predecessor_serial_fkey;
ALTER TABLE rotation_hints DROP CONSTRAINT rotation_hints_serial_fkey;

UPDATE certificates SET serial = pg_temp.canonical_serial(serial) WHERE serial <> pg_temp.canonical_serial(serial);
UPDATE certificates SET predecessor_serial = pg_temp.canonical_serial(predecessor_serial)
 WHERE predecessor_serial <> pg_temp.canonical_serial(predecessor_serial);
UPDATE rotation_hints SET serial = pg_temp.canonical_serial(serial) WHERE serial <> pg_temp.canonical_serial(serial);
UPDATE audit_events SET serial = pg_temp.canonical_serial(serial) WHERE serial <> pg_temp.canonical_serial(serial);

ALTER TABLE certificates ADD CONSTRAINT certificates_predecessor_serial_fkey
  FOREIGN KEY (predecessor_serial) REFERENCES certificates(serial);
ALTER TABLE rotation_hints ADD CONSTRAINT rotation_hints_serial_fkey
  FOREIGN KEY (serial) REFERENCES certificates(serial);

-- From now on only the canonical form is stored: positive, minimal, at most 20 octets.
ALTER TABLE certificates ADD CONSTRAINT certificates_serial_canonical
  CHECK (serial ~ '^(00[89a-f][0-9a-f]|0[1-9a-f]|[1-7][0-9a-f])([0-9a-f]{2})*$' AND length(serial) <= 40);

DROP FUNCTION pg_temp.canonical_serial(text);
