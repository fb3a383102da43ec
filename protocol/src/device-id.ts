// The one device-id rule (docs/architecture.md). It is used at token creation, in the CA profile and in the broker ACL,
// so that an id that is valid anywhere is valid everywhere. Excluding `+ # /` and NUL keeps ids safe as MQTT
// topic levels and client ids (Mosquitto CVE-2017-7650); 63 chars stays under RFC 5280 ub-common-name (64).
export const DEVICE_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function isValidDeviceId(value: unknown): value is string {
  return typeof value === 'string' && DEVICE_ID_PATTERN.test(value);
}

export function deviceUri(deviceId: string): string {
  return `urn:enrolld:device:${deviceId}`;
}

export function deviceIdFromUri(uri: string): string | undefined {
  const prefix = 'urn:enrolld:device:';
  if (!uri.startsWith(prefix)) return undefined;
  const id = uri.slice(prefix.length);
  return isValidDeviceId(id) ? id : undefined;
}
