// The report as terminal tables (cli-table3).
import Table from 'cli-table3';
import { LATENCIES } from './recorder.js';
import type { RunReport } from './report.js';

const LATENCY_LABEL: Record<(typeof LATENCIES)[number], string> = {
  enroll: 'enroll (request → cert)',
  connect: 'connect (first, TLS + CONNACK)',
  reconnect: 'reconnect',
  renew: 'renew (request → new cert)',
  supersede: 'successor up → old cert refused',
  revokeCut: 'revoke → cut (device side)',
  adminRevoke: 'admin revoke call',
};

// colour only on a terminal, and never with NO_COLOR (https://no-color.org); logs and files get plain text
const style = process.stdout.isTTY && !process.env.NO_COLOR ? {} : { style: { head: [], border: [] } };

const ms = (v: number): string => (Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : '–');

export function renderTables(report: RunReport): string {
  const out: string[] = [];
  const verdict = report.passed ? 'PASS' : 'FAIL';
  out.push(`\nenrolld-sim · ${report.scenario} · ${report.counts.total} devices · ${report.durationS}s · ${verdict}`);

  const checks = new Table({ head: ['check', 'result', 'detail'], colWidths: [34, 8, 70], wordWrap: true, ...style });
  for (const c of report.checks) checks.push([c.name, c.ok ? 'ok' : 'FAIL', c.detail]);
  if (report.checks.length > 0) out.push(checks.toString());

  const counts = new Table({ head: ['devices by outcome', 'count'], ...style });
  const c = report.counts;
  counts.push(
    ['enrolled', c.enrolled], ['online at end', c.online], ['rotated ≥ 1', c.rotated], ['revoked (stopped for good)', c.revoked],
    ...Object.entries(report.stopReasons).filter(([k]) => k !== 'revoked' && k !== 'shutdown').map(([k, v]) => [`stopped: ${k}`, v]),
    ['connects / reconnects', `${report.counters.connects} / ${report.counters.reconnects}`],
    ['Retry-After waits (enroll + renew)', `${report.counters.retryAfterWaits}`],
    ['renewals (rest/est/mqtt)', `${report.counters.renewals} (${['rest', 'est', 'mqtt'].map((v) => report.transports.renew[v] ?? 0).join('/')})`],
    ['renewal triggers', Object.entries(report.transports.renewTrigger).map(([k, v]) => `${k} ${v}`).join(', ') || '–'],
    ['old-cert probes / still accepted at bound / refused late', `${report.counters.oldCertProbes} / ${report.counters.oldCertAccepted} / ${report.counters.oldCertLateRefusals}`],
    ['revoked devices refused at reconnect (expected)', `${report.counters.expectedRefusals}`],
  );
  out.push(counts.toString());

  const errors = new Table({ head: ['errors by kind', 'count'], ...style });
  for (const e of report.errors.slice(0, 20)) errors.push([e.kind, e.count]);
  if (report.errors.length === 0) errors.push(['(none)', 0]);
  out.push(errors.toString());

  if (report.probeAdmissions.length > 0) {
    const admitted = new Table({ head: ['old certificate let in after its successor', 'serial', 't (s)', 'accepted', 'refused after'], ...style });
    for (const a of report.probeAdmissions) {
      admitted.push([a.deviceId, a.serial, a.t, a.acceptedAttempts, a.refusedAfterMs === null ? 'not within the bound' : `${a.refusedAfterMs} ms`]);
    }
    out.push(admitted.toString());
  }

  const lat = new Table({ head: ['latency ms', 'n', 'p50', 'p95', 'p99', 'max'], ...style });
  for (const name of LATENCIES) {
    const s = report.latencyMs[name];
    if (s.count === 0) continue;
    lat.push([LATENCY_LABEL[name], s.count, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max)]);
  }
  out.push(lat.toString());

  const figs = new Table({ head: ['figure', 'value'], ...style });
  figs.push(
    ['memory per device (RSS / heap)', `${report.memory.rssKiBPerDevice} KiB / ${report.memory.heapKiBPerDevice} KiB`],
    ['peak RSS', `${report.memory.peakRssMiB} MiB`],
    ...Object.entries(report.figures).map(([k, v]) => [k, String(v)]),
  );
  out.push(figs.toString());
  return out.join('\n');
}
