// The topic ACL matrix of the built-in `device` profile, compiled as the broker compiles it (docs/architecture.md §6):
// its own namespace `devices/<id>/…` only (`devices/<id>` and `devices/<id>/` are in it, as `devices/{id}/#` says in
// MQTT, MQTT-4.7.1-2), never another device, never `$SYS`, never a shared subscription, and the MQTT 3.1.1
// well-formedness rules (§4.7.1, §4.7.3, §1.5.3).
import { describe, expect, it } from '@jest/globals';
import { compileAcl } from '@enrolld/core/acl/compiled-acl.js';
import { BUILTIN_PROFILE_SPECS } from '@enrolld/core/acl/builtin-profiles.js';

const me = 'sensor-0001';
const other = 'sensor-0002';
const device = compileAcl(BUILTIN_PROFILE_SPECS.find((p) => p.name === 'device')!.acl);

describe('topic ACL of the device profile', () => {
  it.each([
    [`devices/${me}/telemetry`, true],
    [`devices/${me}/a/b/c`, true],
    [`devices/${me}/`, true],
    [`devices/${me}`, true],
    [`devices/${other}/telemetry`, false],
    [`devices/${me}x/telemetry`, false], // a longer id sharing the prefix string
    [`devices/${me}/+`, false], // MQTT-3.3.2-2: no wildcards in a topic name
    [`devices/${me}/#`, false],
    [`devices/${me}/a\u0000b`, false], // MQTT-1.5.3-2
    [`$SYS/broker/new/clients`, false],
    [`$SYS/devices/${me}/x`, false],
    [`/devices/${me}/telemetry`, false],
    ['telemetry', false],
  ])('publish %j → %s', (topic, allowed) => {
    expect(device.canPublish(me, topic)).toBe(allowed);
  });

  it.each([
    [`devices/${me}/telemetry`, true],
    [`devices/${me}/#`, true],
    [`devices/${me}/+/state`, true],
    [`devices/${me}/+`, true],
    [`devices/${me}`, true],
    [`devices/${other}/#`, false],
    [`devices/${other}/state`, false],
    [`devices/${me}x/#`, false],
    ['#', false],
    ['+/+/state', false],
    ['devices/+/state', false],
    ['devices/#', false],
    [`$SYS/#`, false],
    [`$share/g/devices/${me}/#`, false], // shared subscriptions are refused even on the own prefix
    [`devices/${me}/a#`, false], // MQTT-4.7.1-2: '#' alone in its level
    [`devices/${me}/#/x`, false], // '#' last
    [`devices/${me}/a+`, false], // MQTT-4.7.1-3: '+' alone in its level
    [`devices/${me}/a\u0000`, false],
    ['', false],
  ])('subscribe %j → %s', (filter, allowed) => {
    expect(device.canSubscribe(me, filter)).toBe(allowed);
  });
});
