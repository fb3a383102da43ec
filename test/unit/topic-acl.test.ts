// The topic ACL matrix (docs/architecture.md, topic ACL): own prefix only, wildcards only after it, never `$SYS`,
// never a shared subscription, and the MQTT 3.1.1 well-formedness rules (§4.7.1, §4.7.3, §1.5.3).
import { describe, expect, it } from '@jest/globals';
import { canPublish, canSubscribe } from '../../server/src/mqtt/topic-acl.js';

const me = 'sensor-0001';
const other = 'sensor-0002';

describe('topic ACL', () => {
  it.each([
    [`devices/${me}/telemetry`, true],
    [`devices/${me}/a/b/c`, true],
    [`devices/${me}/`, false], // the prefix itself is not a topic
    [`devices/${me}`, false],
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
    expect(canPublish(me, topic)).toBe(allowed);
  });

  it.each([
    [`devices/${me}/telemetry`, true],
    [`devices/${me}/#`, true],
    [`devices/${me}/+/state`, true],
    [`devices/${me}/+`, true],
    [`devices/${me}/`, false],
    [`devices/${me}`, false],
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
    expect(canSubscribe(me, filter)).toBe(allowed);
  });
});
