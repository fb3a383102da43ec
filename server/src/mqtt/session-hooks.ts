// Extensions that act on device sessions (renewal over MQTT, rotation hints, supersede on first use) hear about them
// through these hooks. The broker's own checks have passed before a hook runs; a hook never decides admission, and
// its errors are only logged.
import type { Aedes, Client, PublishPacket, Subscription } from 'aedes';
import type { Logger } from 'pino';
import type { ConnectRefusal } from './admission.js';
import type { SessionIndex } from './session-index.js';

/** A live device session, as hooks see it: the identity the broker verified at CONNECT. */
export interface DeviceSessionRef {
  deviceId: string;
  /** Canonical form (protocol/src/serial.ts). */
  serial: string;
}

export interface BrokerHooks {
  /** CONNACK 0 was sent. */
  onConnected?(session: DeviceSessionRef): void;
  /** The connection of a session announced by onConnected closed (revoked or not): exactly once per onConnected. */
  onDisconnected?(session: DeviceSessionRef): void;
  /** A device's PUBLISH passed the ACL and was routed. */
  onPublish?(session: DeviceSessionRef, topic: string, payload: Buffer): void;
  /** SUBSCRIBE filters the ACL granted. */
  onSubscribed?(session: DeviceSessionRef, filters: string[]): void;
  /** A CONNECT was refused (CONNACK 3 or 5, or 2/4 for a mismatched client id or username). */
  onRefused?(refusal: ConnectRefusal): void;
}

/** Runs `hooks` on the session events of `aedes`. */
export function attachSessionHooks(aedes: Aedes, hooks: readonly BrokerHooks[], sessions: Pick<SessionIndex, 'liveSessionOf'>, log: Logger): void {
  if (hooks.length === 0) return;

  function run(ref: DeviceSessionRef, call: (hook: BrokerHooks) => void): void {
    for (const hook of hooks) {
      try {
        call(hook);
      } catch (error) {
        log.error({ err: error, deviceId: ref.deviceId }, 'broker hook failed');
      }
    }
  }

  function live(client: Client | null): DeviceSessionRef | undefined {
    const info = sessions.liveSessionOf(client);
    return info ? { deviceId: info.identity.deviceId, serial: info.identity.serial } : undefined;
  }

  aedes.on('clientReady', (client: Client) => {
    const ref = live(client);
    // A socket already gone would never close again: announcing it would leave it connected for the hooks.
    if (!ref || client.conn.destroyed) return;
    run(ref, (hook) => hook.onConnected?.(ref));
    client.conn.once('close', () => run(ref, (hook) => hook.onDisconnected?.(ref)));
  });
  aedes.on('publish', (packet: PublishPacket, client: Client | null) => {
    const ref = live(client);
    if (!ref) return;
    const payload = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload);
    run(ref, (hook) => hook.onPublish?.(ref, packet.topic, payload));
  });
  aedes.on('subscribe', (subs: Subscription[], client: Client) => {
    // QoS 128 marks a filter the ACL negated (MQTT-3.9.3).
    const granted = subs.filter((s) => (s.qos as number) !== 128).map((s) => s.topic);
    const ref = granted.length > 0 ? live(client) : undefined;
    if (ref) run(ref, (hook) => hook.onSubscribed?.(ref, granted));
  });
}
