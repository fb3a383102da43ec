// The topic ACL (docs/architecture.md, topic ACL): a device may publish and subscribe only under `devices/<its id>/`.
// Wildcards are allowed only after that prefix, so `#`, `+/…`, `devices/+/…` and shared subscriptions
// (`$share/…`) never match another device (Aedes #719/#720, Mosquitto CVE-2017-7650). `$SYS` is never writable (Aedes #597).
import { DEVICE_TOPIC_ROOT } from '@enrolld/protocol';

function ownPrefix(deviceId: string): string {
  return `${DEVICE_TOPIC_ROOT}/${deviceId}/`;
}

/** MQTT-4.7.1: `#` only last and alone in its level, `+` alone in its level, no NUL (MQTT-1.5.3-2). */
function wellFormedFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return false;
    if (level.includes('+') && level !== '+') return false;
  }
  return true;
}

export function canPublish(deviceId: string, topic: string): boolean {
  // MQTT-3.3.2-2: no wildcards in a topic name. Length > prefix: `devices/<id>/` itself is not a topic.
  if (topic.includes('#') || topic.includes('+') || topic.includes('\u0000')) return false;
  const prefix = ownPrefix(deviceId);
  return topic.startsWith(prefix) && topic.length > prefix.length;
}

export function canSubscribe(deviceId: string, filter: string): boolean {
  if (!wellFormedFilter(filter)) return false;
  const prefix = ownPrefix(deviceId);
  return filter.startsWith(prefix) && filter.length > prefix.length;
}
