// The one identity rule (docs/architecture.md §5). Every certificate names one identity of one kind: a device
// (`urn:enrolld:device:<id>`), a backend service (`urn:enrolld:service:<name>`) or an admin of the admin API
// (`urn:enrolld:admin:<name>`). Ids and names follow the same pattern and share one namespace, so an id names exactly
// one identity, whose kind the server's record fixes.
// It is used at token creation, in the CA profile and in the broker ACL, so that an id that is valid anywhere is
// valid everywhere. Excluding `+ # /` and NUL keeps ids safe as MQTT topic levels and client ids (Mosquitto
// CVE-2017-7650); 63 chars stays under RFC 5280 ub-common-name (64).
export const DEVICE_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const IDENTITY_KINDS = ['device', 'service', 'admin'] as const;
export type IdentityKind = (typeof IDENTITY_KINDS)[number];

export interface Identity {
  kind: IdentityKind;
  id: string;
}

const URI_PREFIX = 'urn:enrolld:';

export function isValidDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value);
}

/**
 * A device group (`enrolld token create --group`): it goes into the certificate and fills the ACL placeholder
 * `{group}`, a whole topic level, so it follows the identity rule for the same reasons.
 */
export function isValidGroup(value: unknown): value is string {
  return isValidDeviceId(value);
}

export function isIdentityKind(value: unknown): value is IdentityKind {
  return value === 'device' || value === 'service' || value === 'admin';
}

/** The SAN URI of an identity: `urn:enrolld:<kind>:<id>`. */
export function identityUri(kind: IdentityKind, id: string): string {
  return `${URI_PREFIX}${kind}:${id}`;
}

/** The identity a SAN URI names, if it is one of ours and the id follows the rule. */
export function identityFromUri(uri: string): Identity | undefined {
  if (!uri.startsWith(URI_PREFIX)) return undefined;
  const rest = uri.slice(URI_PREFIX.length);
  const colon = rest.indexOf(':');
  const kind = rest.slice(0, colon);
  const id = rest.slice(colon + 1);
  return colon > 0 && isIdentityKind(kind) && isValidDeviceId(id) ? { kind, id } : undefined;
}

export function deviceUri(deviceId: string): string {
  return identityUri('device', deviceId);
}
