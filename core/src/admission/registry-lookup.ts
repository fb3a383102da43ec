// A serial the registry does not hold may be one that committed a moment ago and whose NOTIFY has not arrived (a device
// that enrolls on the API and connects at once to another broker process). Before refusing it, the broker reads that
// device's current certificates from the store (one indexed query) and merges them into the registry.
// The lookups are bounded, so CONNECTs with certificates that will never be admitted cannot load the database: a
// token bucket for the process, one lookup in flight per device, and a cooldown per serial after a lookup that did
// not make it admissible.
import type { Clock } from '../clock.js';
import { fullBucket, tryTake } from '../token-bucket.js';
import type { RegistryStore } from './ports.js';
import type { AdmissionRegistry } from './registry.js';

export type LookupOutcome =
  /** The registry was refreshed from the store (the serial may or may not be admissible now). */
  | 'refreshed'
  /** Not looked up: this serial was looked up moments ago; the registry's answer stands. */
  | 'recent'
  /** Not looked up: over the rate limit, or the store failed. Nothing is known: answer "try later", not "refused". */
  | 'unavailable';

export interface RegistryLookupOptions {
  /** Lookups per second, sustained. */
  ratePerSecond: number;
  /** Lookups allowed at once after a quiet period. */
  burst: number;
  /** How long a serial that a lookup left unadmissible is answered from memory. */
  cooldownMs: number;
  /** Bound on the serials remembered for the cooldown. */
  maxRemembered: number;
}

export const defaultRegistryLookupOptions: RegistryLookupOptions = { ratePerSecond: 50, burst: 100, cooldownMs: 30_000, maxRemembered: 10_000 };

export interface RegistryLookup {
  refresh(deviceId: string, serial: string): Promise<LookupOutcome>;
}

export function createRegistryLookup(deps: {
  store: Pick<RegistryStore, 'currentCertificatesOf'>;
  registry: Pick<AdmissionRegistry, 'issued' | 'admit'>;
  clock: Clock;
  options?: Partial<RegistryLookupOptions>;
}): RegistryLookup {
  const options = { ...defaultRegistryLookupOptions, ...deps.options };
  const inFlight = new Map<string, Promise<boolean>>();
  /** serial → when a lookup last left it unadmissible (insertion order = age) */
  const recent = new Map<string, number>();
  const bucket = fullBucket(options, deps.clock.now().getTime());

  function remember(serial: string, now: number): void {
    recent.delete(serial);
    if (recent.size >= options.maxRemembered) {
      const oldest = recent.keys().next().value;
      if (oldest !== undefined) recent.delete(oldest);
    }
    recent.set(serial, now);
  }

  function load(deviceId: string): Promise<boolean> {
    const running = inFlight.get(deviceId);
    if (running) return running;
    const work = deps.store
      .currentCertificatesOf(deviceId)
      .then((rows) => {
        for (const row of rows) if (!row.revoked) deps.registry.issued(row);
        return true;
      })
      .catch(() => false)
      .finally(() => inFlight.delete(deviceId));
    inFlight.set(deviceId, work);
    return work;
  }

  return {
    async refresh(deviceId, serial) {
      const now = deps.clock.now().getTime();
      const seen = recent.get(serial);
      if (seen !== undefined && now - seen < options.cooldownMs) return 'recent';
      if (!inFlight.has(deviceId) && !tryTake(bucket, options, now)) return 'unavailable';
      if (!(await load(deviceId))) return 'unavailable';
      if (deps.registry.admit(serial, deviceId, deps.clock.now().getTime()).ok) recent.delete(serial);
      else remember(serial, now);
      return 'refreshed';
    },
  };
}
