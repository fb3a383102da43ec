// A session ends when its certificate does (RFC 5280 §4.1.2.5, notAfter inclusive): one timer per live session, set
// at admission and cleared when the socket closes, so the cost is O(1) per session and nothing scans.
import type { Socket } from 'node:net';
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { Clock } from '@enrolld/core/clock.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { PeerIdentity } from './peer-identity.js';

/** setTimeout's longest delay (2^31 − 1 ms, ~24.8 days); a longer wait is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SessionExpiry {
  /** Closes the client's connection once `identity.notAfter` has passed. */
  watch(client: Client, identity: PeerIdentity): void;
}

export function createSessionExpiry(deps: { clock: Clock; metrics: BrokerMetrics; log: Logger }): SessionExpiry {
  const { clock, metrics, log } = deps;
  return {
    watch(client, identity) {
      let timer: NodeJS.Timeout | undefined;
      const arm = (): void => {
        // notAfter itself is still valid: the session ends 1 ms after it.
        const remaining = identity.notAfter + 1 - clock.now().getTime();
        if (remaining > 0) {
          timer = setTimeout(arm, Math.min(remaining, MAX_TIMER_MS));
          timer.unref();
          return;
        }
        timer = undefined;
        if (client.conn.destroyed) return;
        metrics.sessionExpired();
        log.info({ deviceId: identity.deviceId, serial: identity.serial, reason: 'expired', peer: (client.conn as Socket).remoteAddress }, 'certificate expired: session closed');
        client.conn.destroy();
      };
      arm();
      client.conn.once('close', () => clearTimeout(timer));
    },
  };
}
