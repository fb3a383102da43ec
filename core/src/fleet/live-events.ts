// What happens in the fleet, as it happens, for the console's live events over SSE. The use cases and the broker hooks
// of this process publish here; `forward` hands those to the cluster relay (cluster-events.ts), which sends them to the
// other processes, and `receive` delivers the other processes' events to this process's listeners only (never
// forwarded again). Presence (connected now, last seen) is kept apart, in the presence store (presence.ts).

/** `count`: how many events of the same kind and identity the sending process coalesced into this one (at least 2). */
export type FleetEvent = (
  | { type: 'enrolled' | 'renewed'; deviceId: string; serial: string; at: string }
  | { type: 'revoked'; deviceId: string; serial: string; reason: string; at: string }
  | { type: 'connected' | 'disconnected'; deviceId: string; serial: string; at: string }
  | { type: 'refused'; deviceId: string | null; serial: string | null; reason: string; at: string }
) & { count?: number };

export interface FleetEventsOptions {
  now?: () => Date;
}

export function createFleetEvents(options: FleetEventsOptions = {}) {
  const now = options.now ?? (() => new Date());
  const listeners = new Set<(event: FleetEvent) => void>();
  const forwards = new Set<(event: FleetEvent) => void>();
  function deliver(event: FleetEvent, to: Set<(event: FleetEvent) => void>): void {
    for (const listener of to) {
      try {
        listener(event);
      } catch {
        // one listener's failure (a closed SSE stream) must not keep the event from the others
      }
    }
  }

  return {
    /** An event of this process: to its listeners and to the forwards (the cluster relay). */
    publish(event: FleetEvent): void {
      deliver(event, listeners);
      deliver(event, forwards);
    },
    /** An event another process sent: to this process's listeners only. */
    receive(event: FleetEvent): void {
      deliver(event, listeners);
    },
    /** Also hands every event this process publishes to `forward` (not the received ones). */
    forward(forward: (event: FleetEvent) => void): () => void {
      forwards.add(forward);
      return () => forwards.delete(forward);
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
