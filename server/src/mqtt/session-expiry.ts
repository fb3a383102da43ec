// A session ends when its certificate does (RFC 5280 §4.1.2.5, notAfter inclusive) or when its profile's access window
// closes (docs/architecture.md §6): one timer per live session, set at admission towards whichever comes first and
// cleared when the socket closes, so the cost is O(1) per session and nothing scans. When it fires it decides again, so
// a timer that fires a millisecond early, or a window that a profile update moved, is simply re-armed; a profile update
// re-evaluates its sessions through recheck().
import type { Socket } from 'node:net';
import type { Client } from 'aedes';
import type { Logger } from 'pino';
import type { AccessWindow } from '@enrolld/core/acl/access-window.js';
import type { Clock } from '@enrolld/core/clock.js';
import { systemTimers, type Timers } from '@enrolld/core/revocation/crl-publisher.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { PeerIdentity } from './peer-identity.js';

/**
 * A far deadline is waited for in steps: the largest power of two up to the wait, 2^17 ms (~2 min) to 2^30 ms (~12 days,
 * under setTimeout's 2^31 − 1 ms limit). Timers run on the monotonic clock and notAfter is on the wall clock, so each
 * step decides again on the wall clock: a clock step (NTP, a VM restored from a snapshot) is seen when the current step
 * ends, at most ~12 days later, instead of when the whole wait would have ended. The last step, under 2^17 ms, is exact.
 */
const FIRST_COARSE_STEP_MS = 2 ** 17;
const LAST_COARSE_STEP_EXPONENT = 30;
function delayTowards(waitMs: number): number {
  if (waitMs < FIRST_COARSE_STEP_MS) return waitMs;
  return 2 ** Math.min(LAST_COARSE_STEP_EXPONENT, Math.floor(Math.log2(waitMs)));
}

export interface SessionExpiry {
  /** Closes the client's connection once `identity.notAfter` has passed or its profile's access window has closed. */
  watch(client: Client, identity: PeerIdentity): void;
  /** Its profile changed: closes the session at once if the window is now closed, else re-arms its timer. */
  recheck(client: Client): void;
}

export interface SessionExpiryDeps {
  clock: Clock;
  metrics: Pick<BrokerMetrics, 'sessionExpired' | 'sessionOutsideWindow'>;
  log: Logger;
  /** The access window of a profile as the broker holds it now; undefined when it has none (or is gone). */
  accessOf(profile: string): AccessWindow | undefined;
  /** The system's (unref'd: a watch never keeps a stopping process alive) unless a test drives them. */
  timers?: Timers | undefined;
}

interface Watched {
  identity: PeerIdentity;
  timer: unknown;
}

export function createSessionExpiry(deps: SessionExpiryDeps): SessionExpiry {
  const { clock, metrics, log } = deps;
  const timers = deps.timers ?? systemTimers;
  const watched = new WeakMap<Client, Watched>();

  function close(client: Client, identity: PeerIdentity, reason: 'expired' | 'outside-window'): void {
    const fields = { deviceId: identity.deviceId, serial: identity.serial, profile: identity.profile, reason, peer: (client.conn as Socket).remoteAddress };
    if (reason === 'expired') {
      metrics.sessionExpired();
      log.info(fields, 'certificate expired: session closed');
    } else {
      metrics.sessionOutsideWindow();
      log.info(fields, 'access window closed: session closed');
    }
    client.conn.destroy();
  }

  /** Decides now: close, or wait for the next instant that can change the answer. */
  function arm(client: Client, entry: Watched): void {
    timers.clearTimeout(entry.timer);
    entry.timer = undefined;
    if (client.conn.destroyed) return;
    const { identity } = entry;
    const now = clock.now().getTime();
    // notAfter itself is still valid: the session ends 1 ms after it.
    if (now > identity.notAfter) return close(client, identity, 'expired');
    const access = deps.accessOf(identity.profile)?.stateAt(now);
    if (access && !access.open) return close(client, identity, 'outside-window');
    const deadline = Math.min(identity.notAfter + 1, access?.changesAt ?? Number.POSITIVE_INFINITY);
    entry.timer = timers.setTimeout(() => arm(client, entry), delayTowards(deadline - now));
  }

  return {
    watch(client, identity) {
      const entry: Watched = { identity, timer: undefined };
      watched.set(client, entry);
      client.conn.once('close', () => timers.clearTimeout(entry.timer));
      arm(client, entry);
    },
    recheck(client) {
      const entry = watched.get(client);
      if (entry) arm(client, entry);
    },
  };
}
