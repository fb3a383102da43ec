import type { ProfileSpec } from '@enrolld/protocol';
import { BUILTIN_PROFILES } from '@enrolld/protocol';

// The profiles every installation has (db/migrations/006_profiles.sql stores the same documents as version 1).
// `device`: its own namespace `devices/<id>/…` and nothing else, lifetime and renewal window from the settings.
// `service`: the default of services, reads every device's telemetry and command acknowledgements and sends commands.
// `admin`: the only profile of admin certificates (db/migrations/012_admins.sql); no topics, the broker refuses them.
export const BUILTIN_PROFILE_SPECS: readonly ProfileSpec[] = [
  {
    name: BUILTIN_PROFILES.device,
    kind: 'device',
    description: 'A device: publish and subscribe under its own devices/<id>/ only',
    acl: [
      { effect: 'allow', action: 'publish', filter: 'devices/{id}/#' },
      { effect: 'allow', action: 'subscribe', filter: 'devices/{id}/#' },
    ],
  },
  {
    name: BUILTIN_PROFILES.service,
    kind: 'service',
    description: 'A backend service: reads all telemetry and command acknowledgements, sends commands',
    acl: [
      { effect: 'allow', action: 'subscribe', filter: 'devices/+/telemetry' },
      { effect: 'allow', action: 'subscribe', filter: 'devices/+/commands/ack' },
      { effect: 'allow', action: 'publish', filter: 'devices/+/commands' },
    ],
  },
  {
    name: BUILTIN_PROFILES.admin,
    kind: 'admin',
    description: 'An admin of the admin API: no MQTT access',
    acl: [],
  },
];

export function isBuiltinProfile(name: string): boolean {
  return Object.values<string>(BUILTIN_PROFILES).includes(name);
}
