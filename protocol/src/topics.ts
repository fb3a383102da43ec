// Topic builders: a device lives under `devices/<id>/`; its profile's ACL says what it may touch there (docs/architecture.md).
// Commands: a service publishes `{id, cmd, sentAt}` on …/commands; the device acts and answers `{id, cmd, ok}` on …/commands/ack.
export const DEVICE_TOPIC_ROOT = 'devices';

export const topics = {
  prefix: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/`,
  telemetry: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/telemetry`,
  commands: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/commands`,
  commandsAck: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/commands/ack`,
  /** What the built-in `service` profile subscribes to: every device's telemetry and command acknowledgements. */
  allTelemetry: `${DEVICE_TOPIC_ROOT}/+/telemetry`,
  allCommandAcks: `${DEVICE_TOPIC_ROOT}/+/commands/ack`,
  rotate: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/rotate`,
  renew: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/renew`,
  renewAccepted: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/renew/accepted`,
  renewRejected: (deviceId: string) => `${DEVICE_TOPIC_ROOT}/${deviceId}/cert/renew/rejected`,
} as const;
