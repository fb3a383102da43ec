// The run report: one JSON-serialisable object, rendered as a terminal table, a JSON file and an HTML page.
import type { Fleet, FleetCounts } from './fleet.js';
import type { Counters, LatencyName, ProbeAdmission, TimelineMark, TimelineSample } from './recorder.js';
import type { Summary } from './stats.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface RunReport {
  tool: 'enrolld-sim';
  scenario: string;
  description: string;
  passed: boolean;
  startedAt: string;
  durationS: number;
  config: Record<string, string | number | boolean>;
  checks: Check[];
  counts: FleetCounts;
  counters: Counters;
  stopReasons: Record<string, number>;
  transports: { enroll: Record<string, number>; renew: Record<string, number>; renewTrigger: Record<string, number> };
  errors: Array<{ kind: string; count: number }>;
  /** each old certificate a probe got in with, at most 50 */
  probeAdmissions: ProbeAdmission[];
  latencyMs: Record<LatencyName, Summary>;
  figures: Record<string, number | string>;
  memory: { devices: number; rssKiBPerDevice: number; heapKiBPerDevice: number; peakRssMiB: number; baselineRssMiB: number };
  timeline: { samples: TimelineSample[]; marks: TimelineMark[] };
}

export function buildReport(args: {
  fleet: Fleet;
  scenario: string;
  description: string;
  startedAt: Date;
  config: Record<string, string | number | boolean>;
  checks: Check[];
  figures: Record<string, number | string>;
  memoryPerDevice: { rssKiB: number; heapKiB: number; devices: number };
}): RunReport {
  const r = args.fleet.recorder;
  const peak = r.samples.reduce((m, s) => Math.max(m, s.rssMiB), 0);
  return {
    tool: 'enrolld-sim',
    scenario: args.scenario,
    description: args.description,
    passed: args.checks.every((c) => c.ok),
    startedAt: args.startedAt.toISOString(),
    durationS: Math.round(r.elapsed() * 10) / 10,
    config: args.config,
    checks: args.checks,
    counts: args.fleet.counts(),
    counters: { ...r.counters },
    stopReasons: Object.fromEntries(r.stopReasons),
    transports: { enroll: Object.fromEntries(r.enrollVia), renew: Object.fromEntries(r.renewVia), renewTrigger: Object.fromEntries(r.renewTrigger) },
    errors: [...r.errors.entries()].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count),
    probeAdmissions: [...r.probeAdmissions],
    latencyMs: r.latencySummaries(),
    figures: args.figures,
    memory: {
      devices: args.memoryPerDevice.devices,
      rssKiBPerDevice: args.memoryPerDevice.rssKiB,
      heapKiBPerDevice: args.memoryPerDevice.heapKiB,
      peakRssMiB: peak,
      baselineRssMiB: Math.round((args.fleet.baseline.rss / 1048576) * 10) / 10,
    },
    timeline: { samples: r.samples, marks: r.marks() },
  };
}
