// CONNECTs per identity: a token bucket per device or service id (its limits' connectRatePerSecond and connectBurst),
// taken by every CONNECT whose certificate names an identity, admitted or not. A device in a reconnect loop therefore
// costs the broker the rate, not its own speed, of everything a CONNECT does after the handshake (admission, session
// takeover, hooks, retained replay). Over the limit the answer is CONNACK 3 (server unavailable): MQTT 3.1.1
// §3.2.2.3 has no code for "too many connections", and 3 is the one that means "try again later" (5 would tell the
// device its credentials are refused). The refusal waits until the bucket would hold a token again, so a device
// that waits for its CONNACK before it retries (every client library does) reconnects at the rate, which bounds its
// TLS handshakes too; a device that does not wait is held by the cap on sockets not yet admitted per address.
import { fullBucket, isFull, msUntilToken, tryTake, type BucketRate, type TokenBucket } from '@enrolld/core/token-bucket.js';
import type { ConnectionLimits } from './limits.js';

/** A refusal never waits longer than this, whatever the rate. */
export const MAX_CONNECT_REFUSAL_DELAY_MS = 5000;
/** Every this many checks, buckets that refilled completely are forgotten (a full bucket is the default). */
const SWEEP_EVERY = 1024;

export type ConnectRateVerdict = { ok: true } | { ok: false; delayMs: number };

export function createConnectRateLimit(options: { now?: () => number } = {}) {
  const now = options.now ?? Date.now;
  const buckets = new Map<string, { bucket: TokenBucket; rate: BucketRate }>();
  let checks = 0;

  function sweep(at: number): void {
    for (const [id, entry] of buckets) if (isFull(entry.bucket, entry.rate, at)) buckets.delete(id);
  }

  return {
    /** Takes a token of the identity's bucket; when there is none, how long to hold the refusal. */
    check(identityId: string, limits: Pick<ConnectionLimits, 'connectRatePerSecond' | 'connectBurst'>): ConnectRateVerdict {
      const at = now();
      if (++checks % SWEEP_EVERY === 0) sweep(at);
      const rate = { ratePerSecond: limits.connectRatePerSecond, burst: limits.connectBurst };
      let entry = buckets.get(identityId);
      if (!entry) {
        entry = { bucket: fullBucket(rate, at), rate };
        buckets.set(identityId, entry);
      }
      entry.rate = rate;
      if (tryTake(entry.bucket, rate, at)) return { ok: true };
      return { ok: false, delayMs: Math.min(MAX_CONNECT_REFUSAL_DELAY_MS, Math.ceil(msUntilToken(entry.bucket, rate, at))) };
    },
    /** Identities whose bucket is not full. */
    tracked: () => buckets.size,
  };
}

export type ConnectRateLimit = ReturnType<typeof createConnectRateLimit>;
