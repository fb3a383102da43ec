// Topic builders: a device lives under `devices/<id>/`; the ACL lets it touch nothing else (docs/architecture.md).
export const DEVICE_TOPIC_ROOT = 'devices';

export const topics = {
  prefix: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/`,
  telemetry: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/telemetry`,
  commands: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/commands`,
  rotate: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/rotate`,
  renew: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/renew`,
  renewAccepted: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/renew/accepted`,
  renewRejected: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/renew/rejected`,
} as const;
