// What happens in the fleet, as it happens, for the console (live events over SSE) and its presence view (connected
// now, last seen, connected over time). In-process: the use cases and the broker hooks of this process publish here,
// so a console on `enrolld up` sees everything; a console on a standalone `enrolld api` sees its own API's events only.

export type FleetEvent =
  | { type: 'enrolled' | 'renewed'; deviceId: string; serial: string; at: string }
  | { type: 'revoked'; deviceId: string; serial: string; reason: string; at: string }
  | { type: 'connected' | 'disconnected'; deviceId: string; serial: string; at: string }
  | { type: 'refused'; deviceId: string | null; serial: string | null; reason: string; at: string };

export interface FleetEventsOptions {
  now?: () => Date;
  /** The connected-over-time series keeps at most this many points, at least `sampleMs` apart. */
  maxSamples?: number;
  sampleMs?: number;
}

export function createFleetEvents(options: FleetEventsOptions = {}) {
  const now = options.now ?? (() => new Date());
  const maxSamples = options.maxSamples ?? 720;
  const sampleMs = options.sampleMs ?? 5000;
  const listeners = new Set<(event: FleetEvent) => void>();
  /** deviceId → live sessions (a device may hold two briefly, during a takeover). */
  const sessions = new Map<string, number>();
  const lastSeen = new Map<string, Date>();
  const series: Array<{ at: number; connected: number }> = [];

  function sample(): void {
    const at = now().getTime();
    const last = series.at(-1);
    if (last && at - last.at < sampleMs) {
      last.connected = sessions.size;
      return;
    }
    series.push({ at, connected: sessions.size });
    if (series.length > maxSamples) series.shift();
  }

  function presence(event: FleetEvent): void {
    if (event.type === 'connected') {
      sessions.set(event.deviceId, (sessions.get(event.deviceId) ?? 0) + 1);
      lastSeen.set(event.deviceId, now());
      sample();
    } else if (event.type === 'disconnected') {
      const left = (sessions.get(event.deviceId) ?? 1) - 1;
      if (left > 0) sessions.set(event.deviceId, left);
      else sessions.delete(event.deviceId);
      lastSeen.set(event.deviceId, now());
      sample();
    }
  }

  return {
    publish(event: FleetEvent): void {
      presence(event);
      for (const listener of listeners) {
        try {
          listener(event);
        } catch {
          // one listener's failure (a closed SSE stream) must not keep the event from the others
        }
      }
    },
    subscribe(listener: (event: FleetEvent) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Live subscribers (open event streams). */
    subscriberCount: () => listeners.size,
    isConnected: (deviceId: string) => sessions.has(deviceId),
    lastSeen: (deviceId: string) => lastSeen.get(deviceId),
    connectedIds: () => [...sessions.keys()],
    /** Connected devices over time, one point per `sampleMs` at most, plus the value now. */
    connectedSeries(): Array<{ at: number; connected: number }> {
      return [...series, { at: now().getTime(), connected: sessions.size }];
    },
    now: () => now().toISOString(),
  };
}

export type FleetEvents = ReturnType<typeof createFleetEvents>;
