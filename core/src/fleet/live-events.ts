// What happens in the fleet, as it happens, for the console's live events over SSE. In-process: the use cases and the
// broker hooks of this process publish here, so a console on `enrolld up` sees everything; a console on a standalone
// `enrolld api` sees its own API's events only. Presence (connected now, last seen) is cluster-wide and kept apart, in
// the presence store (presence.ts).

export type FleetEvent =
  | { type: 'enrolled' | 'renewed'; deviceId: string; serial: string; at: string }
  | { type: 'revoked'; deviceId: string; serial: string; reason: string; at: string }
  | { type: 'connected' | 'disconnected'; deviceId: string; serial: string; at: string }
  | { type: 'refused'; deviceId: string | null; serial: string | null; reason: string; at: string };

export interface FleetEventsOptions {
  now?: () => Date;
}

export function createFleetEvents(options: FleetEventsOptions = {}) {
  const now = options.now ?? (() => new Date());
  const listeners = new Set<(event: FleetEvent) => void>();

  return {
    publish(event: FleetEvent): void {
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
    now: () => now().toISOString(),
  };
}

export type FleetEvents = ReturnType<typeof createFleetEvents>;
