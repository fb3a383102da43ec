// What a revocation does to this broker's live sessions and their leftovers:
//  - the sockets of that serial are destroyed at once (a TCP close; a reconnect then gets CONNACK 5), with no will;
//  - unless the reason is `superseded` (a rotation that hands the session on to the successor), the device's
//    persistent subscriptions, queued messages, inbound QoS 2 state and retained messages are purged.
import type { Aedes } from 'aedes';
import type { Logger } from 'pino';
import { REVOCATION_REASONS } from '@enrolld/protocol';
import type { RevokedNotice } from '@enrolld/core/revocation/revocation-sync.js';
import { dropClientWill, sessionPersistence } from './aedes-internals.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { SessionIndex } from './session-index.js';

export interface RevocationCutDeps {
  sessions: Pick<SessionIndex, 'clientsOf' | 'sessionOf'>;
  /** The running broker; the purge is skipped when there is none. */
  aedes(): Aedes | undefined;
  metrics: BrokerMetrics;
  log: Logger;
  /** The device's retained messages are gone (its retained quota starts again). */
  retainedPurged(deviceId: string): void;
}

const SUPERSEDED = REVOCATION_REASONS.superseded;

export interface RevocationCut {
  (notices: RevokedNotice[]): void;
  /** Purges one device's residue from the (shared) persistence again: idempotent; a cluster node runs it after a bus outage. */
  purgeResidue(deviceId: string): Promise<void>;
}

export function createRevocationCut(deps: RevocationCutDeps & {
  /** Each device whose residue purge was started (a cluster node repeats those of a bus outage when it resyncs). */
  onPurge?: ((deviceId: string) => void) | undefined;
}): RevocationCut {
  const { sessions, metrics, log } = deps;

  async function purgeResidue(deviceId: string): Promise<void> {
    const aedes = deps.aedes();
    if (!aedes || aedes.closed) return;
    const persistence = sessionPersistence(aedes);
    const id = { id: deviceId, brokerId: aedes.id };
    await persistence.delWill(id);
    // MQTT-3.1.2-4..5 session state of a clean=false client (Mosquitto CVE-2021-34434: subscriptions survived).
    await persistence.cleanSubscriptions(id);
    const queued: Array<{ messageId?: number }> = [];
    for await (const packet of persistence.outgoingStream(id)) queued.push(packet);
    for (const packet of queued) await persistence.outgoingClearMessageId(id, packet);
    await persistence.cleanIncoming?.(id);
    // Retained messages under the device's own prefix: only it could publish there (Mosquitto CVE-2018-12546).
    const retained: string[] = [];
    for await (const packet of persistence.createRetainedStream(`devices/${deviceId}/#`)) retained.push(packet.topic);
    // MQTT-3.3.1-10: a retained PUBLISH with an empty payload removes the retained message of that topic.
    for (const topic of retained) {
      await persistence.storeRetained({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true });
    }
    deps.retainedPurged(deviceId);
    if (queued.length + retained.length > 0) log.info({ deviceId, queued: queued.length, retained: retained.length }, 'purged session residue of a revoked device');
  }

  const cut = function cut(notices: RevokedNotice[]) {
    for (const notice of notices) {
      const closed = sessions.clientsOf(notice.serial);
      for (const client of closed) {
        const info = sessions.sessionOf(client);
        if (info) info.revoked = true;
        // No will for a revoked device (in the spirit of GHSA-4cmx-hrq9-c23p): dropped before aedes' close publishes it.
        dropClientWill(client);
        client.conn.once('close', () => metrics.enforced((Date.now() - notice.atMs) / 1000));
        client.conn.destroy();
      }
      if (closed.length > 0) log.warn({ deviceId: notice.deviceId, serial: notice.serial, sessions: closed.length }, 'revoked: live session closed');
      if (notice.reasonCode !== SUPERSEDED) {
        // After the sockets are gone and aedes has run its close (next turns of the loop).
        deps.onPurge?.(notice.deviceId);
        setImmediate(() => {
          purgeResidue(notice.deviceId).catch((error: unknown) => log.error({ err: error, deviceId: notice.deviceId }, 'purging session residue failed'));
        });
      }
    }
  };
  return Object.assign(cut, { purgeResidue });
}
