// A broker node's presence writer (docs/architecture.md §9b). The broker hooks only touch two in-memory maps, so a
// CONNECT costs what it did; every `flushMs` the changes go to the store in one write, and every `heartbeatMs` the node
// refreshes its heartbeat (valid for `staleAfterMs`) and removes nodes whose heartbeat expired (a killed broker). A node
// whose own row was removed meanwhile (Postgres unreachable for longer than staleAfterMs) writes its whole state again.
// A failed write is logged and retried with the next one: presence is a view, never an admission decision.
import type { PresenceChanges, PresenceStore } from './ports.js';

export interface PresenceWriterOptions {
  store: PresenceStore;
  nodeId: string;
  environment: string;
  flushMs: number;
  heartbeatMs: number;
  staleAfterMs: number;
  now?: () => Date;
  onError?: (error: unknown, what: 'flush' | 'heartbeat') => void;
}

export function createPresenceWriter(options: PresenceWriterOptions) {
  const { store, nodeId } = options;
  const now = options.now ?? (() => new Date());
  /** deviceId → this node's live sessions (two briefly, during a takeover) and the start of the oldest. */
  const sessions = new Map<string, { count: number; since: Date }>();
  /** deviceId → its latest connect or disconnect not yet written. */
  const dirty = new Map<string, Date>();
  let flushTimer: ReturnType<typeof setInterval> | undefined;
  let heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  let flushing: Promise<void> | undefined;
  let beating: Promise<void> | undefined;
  /** Set when the node's row was (re)created: the next flush writes every session, not only the changed ones. */
  let rewriteAll = true;

  function changes(): PresenceChanges {
    const ids = rewriteAll ? new Set([...sessions.keys(), ...dirty.keys()]) : new Set(dirty.keys());
    const out: PresenceChanges = { connected: [], disconnected: [], seen: [] };
    for (const id of ids) {
      const live = sessions.get(id);
      if (live) out.connected.push({ deviceId: id, since: live.since });
      else out.disconnected.push(id);
      const at = dirty.get(id);
      if (at) out.seen.push({ deviceId: id, at });
    }
    return out;
  }

  async function flushOnce(): Promise<void> {
    if (dirty.size === 0 && !rewriteAll) return;
    const taken = new Map(dirty);
    const wasRewrite = rewriteAll;
    const batch = changes();
    dirty.clear();
    rewriteAll = false;
    try {
      await store.apply(nodeId, batch);
    } catch (error) {
      // Put back what was taken unless a newer change of the same device came meanwhile.
      for (const [id, at] of taken) if (!dirty.has(id)) dirty.set(id, at);
      rewriteAll ||= wasRewrite;
      throw error;
    }
  }

  function flush(): Promise<void> {
    flushing ??= flushOnce()
      .catch((error: unknown) => options.onError?.(error, 'flush'))
      .finally(() => (flushing = undefined));
    return flushing;
  }

  async function heartbeatOnce(): Promise<void> {
    const { registered } = await store.heartbeat(nodeId, options.environment, options.staleAfterMs);
    if (registered) rewriteAll = true;
    await store.removeStale();
  }

  function heartbeat(): Promise<void> {
    beating ??= heartbeatOnce()
      .catch((error: unknown) => options.onError?.(error, 'heartbeat'))
      .finally(() => (beating = undefined));
    return beating;
  }

  return {
    nodeId,
    connected(deviceId: string): void {
      const at = now();
      const live = sessions.get(deviceId);
      if (live) live.count++;
      else sessions.set(deviceId, { count: 1, since: at });
      dirty.set(deviceId, at);
    },
    disconnected(deviceId: string): void {
      const live = sessions.get(deviceId);
      if (live && --live.count <= 0) sessions.delete(deviceId);
      dirty.set(deviceId, now());
    },
    /** Registers the node and starts the timers; a store that does not answer yet is retried by them (onError). */
    async start(): Promise<void> {
      await heartbeat();
      flushTimer = setInterval(() => void flush(), options.flushMs);
      heartbeatTimer = setInterval(() => void heartbeat(), options.heartbeatMs);
      flushTimer.unref?.();
      heartbeatTimer.unref?.();
    },
    /** Writes what is pending now (tests, and before stop). */
    flush,
    heartbeat,
    /** Stops the timers and removes the node with its rows: its devices are not connected here any more. */
    async stop(): Promise<void> {
      clearInterval(flushTimer);
      clearInterval(heartbeatTimer);
      flushTimer = heartbeatTimer = undefined;
      await Promise.all([flushing, beating]);
      await store.removeNode(nodeId).catch((error: unknown) => options.onError?.(error, 'flush'));
    },
    /** Devices with a session on this node (the count the node itself knows). */
    localCount: () => sessions.size,
  };
}

export type PresenceWriter = ReturnType<typeof createPresenceWriter>;

/**
 * The connected-devices series of the console chart, kept in the store for the whole cluster: every `sampleMs` each API
 * replica offers a sample for the current bucket and the store keeps the first (so one writer per bucket cluster-wide),
 * keeping `retainMs`. Reading returns that shared history plus the value at the moment it is read, so a replica started
 * a minute ago draws the same hour as the others.
 */
export function createConnectedSeries(options: {
  store: Pick<PresenceStore, 'connectedCount' | 'sampleConnected' | 'connectedHistory'>;
  sampleMs: number;
  retainMs: number;
  now?: () => Date;
  onError?: (error: unknown) => void;
}) {
  const now = options.now ?? (() => new Date());
  const { store } = options;
  let timer: ReturnType<typeof setInterval> | undefined;
  let sampling: Promise<unknown> | undefined;
  function sample(): Promise<unknown> {
    sampling ??= store
      .sampleConnected(options.sampleMs, options.retainMs)
      .catch((error: unknown) => options.onError?.(error))
      .finally(() => (sampling = undefined));
    return sampling;
  }
  return {
    start(): void {
      void sample();
      timer = setInterval(() => void sample(), options.sampleMs);
      timer.unref?.();
    },
    /** Offers a sample now (tests; the timer does the same). */
    sample,
    async stop(): Promise<void> {
      clearInterval(timer);
      timer = undefined;
      await sampling;
    },
    async read(): Promise<Array<{ at: number; connected: number }>> {
      const [history, current] = await Promise.all([
        store.connectedHistory(options.retainMs).catch(() => []),
        store.connectedCount().catch(() => undefined),
      ]);
      const series = history.map((h) => ({ at: h.at.getTime(), connected: h.connected }));
      return current === undefined ? series : [...series, { at: now().getTime(), connected: current }];
    },
  };
}
