// What the fleet console and the fleet metrics read (docs/architecture.md §9b): a keyset search over devices and a few
// aggregates. Filters are all optional and combine with AND, so a new one is one more field.
import type { CertificateStatus, DeviceSummary } from '@enrolld/protocol';

export interface FleetQuery {
  limit: number;
  /** Keyset: the last device id of the previous page. */
  after?: string | undefined;
  prefix?: string | undefined;
  status?: CertificateStatus | undefined;
  profile?: string | undefined;
  /** The current certificate is active and expires within this many days. */
  expiresWithinDays?: number | undefined;
  /** Only these devices (the ones connected now, from the broker). */
  deviceIds?: string[] | undefined;
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
  /** How many of these devices each profile has. */
  profilesOf(deviceIds: string[]): Promise<Array<{ profile: string; count: number }>>;
  /** thisUpdate and nextUpdate of the newest stored CRL. */
  latestCrlTimes(): Promise<{ thisUpdate: Date; nextUpdate: Date } | undefined>;
}
