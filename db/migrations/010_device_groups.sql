-- Device groups (docs/architecture.md §5): a token may name a group; the certificate it enrolls carries it in the
-- enrolldProfile extension, and the profile ACL's {group} placeholder stands for it. The group follows the identity
-- rule. The device records the group of its last enrollment; each certificate records the group written into it, so
-- a renewal keeps it (a CSR never chooses one) and an intent whose signing failed is rebuilt byte for byte.
ALTER TABLE bootstrap_tokens ADD COLUMN device_group text CHECK (device_group ~ '^[a-z0-9][a-z0-9._-]{0,62}$');
ALTER TABLE devices ADD COLUMN device_group text CHECK (device_group ~ '^[a-z0-9][a-z0-9._-]{0,62}$');
ALTER TABLE certificates ADD COLUMN device_group text CHECK (device_group ~ '^[a-z0-9][a-z0-9._-]{0,62}$');
