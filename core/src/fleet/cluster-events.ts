// The console's live events across processes (docs/architecture.md §9b). Each process's relay collects the events its
// use cases and broker hooks publish and, every `flushMs`, sends them on the bus in small batches; it delivers the
// other relays' batches to its process's listeners. A reconnect loop cannot flood the bus: within one flush, events of
// the same kind, identity and reason are coalesced into the latest with a `count`, and at most `maxPerFlush` distinct
// ones go out (the rest are counted as dropped). Every published event is counted once by where it ended (onOutcome),
// and every failed send too, for the process's metrics. The hooks only touch a map: nothing waits on the bus.
import type { FleetEvent, FleetEvents } from './live-events.js';
import type { FleetEventBatch, FleetEventBus } from './ports.js';

/** Events per message: a NOTIFY payload stays far below Postgres's 8000 bytes. */
export const EVENTS_PER_BATCH = 20;

export interface ClusterEventsOptions {
  bus: FleetEventBus;
  events: FleetEvents;
  /** This relay's id, unique in the cluster: its own batches heard back on the bus are dropped. */
  origin: string;
  flushMs: number;
  maxPerFlush: number;
  /** false for a process with no console (a standalone broker): it only sends. */
  listen: boolean;
  onError?: (error: unknown) => void;
  onDropped?: (dropped: number) => void;
  /**
   * Where each event this process published ended, counted once: `sent` (a distinct event in a send that succeeded),
   * `coalesced` (merged into an earlier one's `count`), `over-limit` (dropped, past `maxPerFlush`), `send-failed`
   * (a distinct event in a send that failed). The four add up to the events published while the relay ran.
   */
  onOutcome?: (outcome: ClusterEventOutcome, events: number) => void;
  /** Each failed send (one statement carrying all of a flush's batches). */
  onSendFailed?: () => void;
}

export type ClusterEventOutcome = 'sent' | 'coalesced' | 'over-limit' | 'send-failed';

const keyOf = (e: FleetEvent) => `${e.type}\n${e.deviceId ?? ''}\n${e.serial ?? ''}\n${'reason' in e ? e.reason : ''}`;

export function createClusterEvents(options: ClusterEventsOptions) {
  const { bus, events, origin } = options;
  const pending = new Map<string, FleetEvent>();
  let dropped = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  let sending: Promise<void> | undefined;
  let unforward: (() => void) | undefined;

  function note(event: FleetEvent): void {
    const key = keyOf(event);
    const earlier = pending.get(key);
    if (earlier) {
      pending.set(key, { ...event, count: (earlier.count ?? 1) + (event.count ?? 1) });
      options.onOutcome?.('coalesced', 1);
    } else if (pending.size < options.maxPerFlush) {
      pending.set(key, event);
    } else {
      dropped++;
      options.onOutcome?.('over-limit', 1);
    }
  }

  async function flushOnce(): Promise<void> {
    if (dropped > 0) options.onDropped?.(dropped);
    dropped = 0;
    if (pending.size === 0) return;
    const all = [...pending.values()];
    pending.clear();
    const batches: FleetEventBatch[] = [];
    for (let i = 0; i < all.length; i += EVENTS_PER_BATCH) batches.push({ origin, events: all.slice(i, i + EVENTS_PER_BATCH) });
    // Not retried: a live event that comes late is worse than one that does not come.
    try {
      await bus.send(batches);
    } catch (error) {
      options.onSendFailed?.();
      options.onOutcome?.('send-failed', all.length);
      throw error;
    }
    options.onOutcome?.('sent', all.length);
  }

  function flush(): Promise<void> {
    sending ??= flushOnce()
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => (sending = undefined));
    return sending;
  }

  function heard(batch: FleetEventBatch): void {
    if (batch.origin === origin) return; // published here already: shown once
    for (const event of batch.events) events.receive(event);
  }

  return {
    origin,
    /** Forwards this process's events and, when it listens, starts hearing the others'. */
    async start(): Promise<void> {
      unforward = events.forward(note);
      if (options.listen) await bus.listen(heard);
      timer = setInterval(() => void flush(), options.flushMs);
      timer.unref?.();
    },
    /** Sends what is pending now (tests, and before stop). */
    flush,
    async stop(): Promise<void> {
      unforward?.();
      unforward = undefined;
      clearInterval(timer);
      timer = undefined;
      await flush();
      await bus.stop();
    },
  };
}

export type ClusterEvents = ReturnType<typeof createClusterEvents>;
