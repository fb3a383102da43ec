// Run settings: defaults, then the scenario's preset, then what the user passed.
import { resolve } from 'node:path';
import type { RevocationReason } from '@enrolld/protocol';
import type { EnrollMode, RenewMode } from './fleet.js';

export const SCENARIO_NAMES = ['run', 'enroll-storm', 'rotation-wave', 'revoke-mid-session', 'reconnect-storm', 'soak', 'showcase'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];
export type StormTrigger = 'auto' | 'restart' | 'drop' | 'client' | 'kill-node';

export interface RunOptions {
  scenario: ScenarioName;
  devices: number;
  apiUrl: string;
  /** one URL, or several comma-separated (the nodes of a cluster) */
  brokerUrl: string;
  /** ENROLLD_HOME: where root CA and admin token are found by default */
  home: string;
  caFile: string | undefined;
  adminTokenFile: string | undefined;
  tokensCsv: string | undefined;
  /** device ids are <prefix><n> when tokens come from the admin API */
  tokenPrefix: string | undefined;
  enrollVia: EnrollMode;
  renewVia: RenewMode;
  telemetryIntervalMs: number;
  qos: 0 | 1;
  echo: boolean;
  sendChain: boolean;
  enrollConcurrency: number;
  connectConcurrency: number;
  connectRate: number;
  rampPerSecond: number;
  reconnectBaseMs: number;
  reconnectCapMs: number;
  /** handshake refusals in a row that a device takes as "revoked": for brokers without CONNACK 5 (0 = off, for enrolld) */
  tlsRefusalsToStop: number;
  rotateAfterMs: number | undefined;
  probeOldCertAfterMs: number | undefined;
  /** the old cert must be refused within this long after the successor's CONNACK */
  oldCertBoundMs: number;
  durationMs: number;
  timeoutMs: number;
  warmupMs: number;
  holdMs: number;
  revokeCount: number | undefined;
  revokeReason: RevocationReason;
  cutBoundMs: number;
  maxLifetimeMs: number;
  stormTrigger: StormTrigger;
  maxRssSlopeMiBPerMin: number;
  brokerRestartCmd: string | undefined;
  brokerDropUrl: string | undefined;
  reportDir: string;
  reportName: string | undefined;
  progress: boolean;
  seed: number | undefined;
}

export const DEFAULTS: RunOptions = {
  scenario: 'run',
  devices: 10,
  apiUrl: 'https://localhost:8443',
  brokerUrl: 'mqtts://localhost:8883',
  home: process.env.ENROLLD_HOME ?? './.enrolld',
  caFile: undefined,
  adminTokenFile: undefined,
  tokensCsv: undefined,
  tokenPrefix: undefined,
  enrollVia: 'rest',
  renewVia: 'rest',
  telemetryIntervalMs: 5_000,
  qos: 0,
  echo: false,
  sendChain: true,
  enrollConcurrency: 50,
  connectConcurrency: 50,
  connectRate: 300,
  rampPerSecond: 0,
  reconnectBaseMs: 500,
  reconnectCapMs: 15_000,
  tlsRefusalsToStop: 0,
  rotateAfterMs: undefined,
  probeOldCertAfterMs: undefined,
  oldCertBoundMs: 5_000,
  durationMs: 30_000,
  timeoutMs: 180_000,
  warmupMs: 3_000,
  holdMs: 10_000,
  revokeCount: undefined,
  revokeReason: 'keyCompromise',
  cutBoundMs: 5_000,
  maxLifetimeMs: 300_000,
  stormTrigger: 'auto',
  maxRssSlopeMiBPerMin: 2,
  brokerRestartCmd: undefined,
  brokerDropUrl: undefined,
  reportDir: '.',
  reportName: undefined,
  progress: true,
  seed: undefined,
};

/** What each scenario changes from the defaults (the user's flags still win). */
export const PRESETS: Record<ScenarioName, Partial<RunOptions>> = {
  run: {},
  'enroll-storm': { devices: 1_000, telemetryIntervalMs: 10_000, holdMs: 3_000 },
  'rotation-wave': { renewVia: 'mix', probeOldCertAfterMs: 1_000, telemetryIntervalMs: 5_000 },
  'revoke-mid-session': { echo: true, telemetryIntervalMs: 1_000, holdMs: 10_000 },
  'reconnect-storm': { telemetryIntervalMs: 10_000, reconnectBaseMs: 1_000, reconnectCapMs: 30_000 },
  // the soak probes the old certificate 100 ms after the successor's CONNACK, so its supersede latency is measured to 0.1 s
  soak: { durationMs: 600_000, telemetryIntervalMs: 5_000, enrollVia: 'mix', renewVia: 'mix', probeOldCertAfterMs: 100 },
  showcase: { devices: 50, echo: true, telemetryIntervalMs: 1_000, enrollVia: 'mix', renewVia: 'mix', probeOldCertAfterMs: 1_000, holdMs: 8_000 },
};

export function resolveOptions(user: Partial<RunOptions>): RunOptions {
  const scenario = user.scenario ?? DEFAULTS.scenario;
  const merged: RunOptions = { ...DEFAULTS, ...PRESETS[scenario], ...stripUndefined(user), scenario };
  merged.home = resolve(merged.home);
  return merged;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** "500ms", "30s", "2m", "1h", or a bare number of seconds → ms. */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a duration like 500ms, 30s, 2m or 1h`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}
