// What the fleet console and the fleet metrics read (docs/architecture.md §9b): a keyset search over devices and a few
// aggregates. Filters are all optional and combine with AND, so a new one is one more field.
import type { CertificateStatus, DeviceSummary } from '@enrolld/protocol';
import type { FleetEvent } from './live-events.js';

export interface FleetQuery {
  limit: number;
  /** Keyset: the last device id of the previous page. */
  after?: string | undefined;
  prefix?: string | undefined;
  status?: CertificateStatus | undefined;
  profile?: string | undefined;
  /** The current certificate is active and expires within this many days. */
  expiresWithinDays?: number | undefined;
  /** Only these devices. */
  deviceIds?: string[] | undefined;
  /** Only devices connected now (true) or not (false) on a live broker node (PresenceStore). */
  connected?: boolean | undefined;
  /** Only identities of this environment. */
  environment?: string | undefined;
  /** Only devices whose last enrollment used a token of this batch. */
  tokenBatch?: string | undefined;
}

export interface ExpiringCount {
  withinSeconds: number;
  /** Live certificates (issued, unrevoked, unexpired) whose notAfter falls within the window. */
  expiring: number;
  /** Of those, the ones no successor was issued for yet. */
  withoutSuccessor: number;
}

export interface FleetStore {
  search(query: FleetQuery): Promise<DeviceSummary[]>;
  expiring(windowsSeconds: number[]): Promise<ExpiringCount[]>;
  /** Live certificates expiring per UTC day, from today over `days` days (days without any are absent). */
  expiringPerDay(days: number): Promise<Array<{ day: string; count: number }>>;
  /** thisUpdate and nextUpdate of the newest stored CRL. */
  latestCrlTimes(): Promise<{ thisUpdate: Date; nextUpdate: Date } | undefined>;
}

/** A device's presence across every broker node: connected on a node whose heartbeat has not expired, and last seen. */
export interface DevicePresence {
  connected: boolean;
  /** The latest connect or disconnect any node reported; null if none was. */
  lastSeen: Date | null;
}

/** One node's presence changes since its last write (docs/architecture.md §9b). */
export interface PresenceChanges {
  /** Devices that hold at least one session on the node now, with the start of the oldest. */
  connected: Array<{ deviceId: string; since: Date }>;
  /** Devices that hold none on the node any more. */
  disconnected: string[];
  /** The latest connect or disconnect of each device named above. */
  seen: Array<{ deviceId: string; at: Date }>;
}

/**
 * Presence rows of every broker node (Postgres in production, so every API replica sees the whole cluster). The writer
 * side is used by brokers (core/src/fleet/presence.ts), the reader side by the console and the fleet metrics.
 */
export interface PresenceStore {
  /**
   * Registers the node or refreshes its heartbeat, valid for `ttlMs`. `registered` is true when the node had no row (its
   * first heartbeat, or its row was removed as stale meanwhile, with its presence rows): the node writes its state again.
   */
  heartbeat(nodeId: string, environment: string, ttlMs: number): Promise<{ registered: boolean }>;
  /** One batch of a node's changes, written at once. */
  apply(nodeId: string, changes: PresenceChanges): Promise<void>;
  /** Deletes nodes whose heartbeat expired, with their presence rows; their devices were last seen at that heartbeat. */
  removeStale(): Promise<number>;
  /** A node that stops in order removes itself (its devices were last seen now). */
  removeNode(nodeId: string): Promise<void>;
  presenceOf(deviceIds: string[]): Promise<Map<string, DevicePresence>>;
  /** Devices connected on at least one live node. */
  connectedCount(): Promise<number>;
  /**
   * The connected-devices chart, shared by every API replica: writes `connectedCount()` into the `bucketMs` bucket the
   * store's clock is in unless some replica already did (true when this call wrote it), and drops buckets older than
   * `retainMs`.
   */
  sampleConnected(bucketMs: number, retainMs: number): Promise<boolean>;
  /** The samples of the buckets of the last `sinceMs`, oldest first, each at the time its count was taken. */
  connectedHistory(sinceMs: number): Promise<Array<{ at: Date; connected: number }>>;
  /** Connected devices by their profile. */
  connectedByProfile(): Promise<Array<{ profile: string; count: number }>>;
}

/** Fleet events one process sends the others in one message (cluster-events.ts). */
export interface FleetEventBatch {
  /** The sending relay; a relay drops its own batches when the bus brings them back. */
  origin: string;
  events: FleetEvent[];
}

/**
 * Carries fleet events between processes (Postgres NOTIFY in production). Best effort: a batch sent while a listener
 * is reconnecting is not delivered to it, which live events tolerate (the console's pages read the stores).
 */
export interface FleetEventBus {
  /** Sends the batches (each small enough for one message), in one round trip. */
  send(batches: FleetEventBatch[]): Promise<void>;
  /** Starts hearing every batch sent on the bus, own ones included. */
  listen(onBatch: (batch: FleetEventBatch) => void): Promise<void>;
  stop(): Promise<void>;
}
