// The report as one self-contained HTML page: inline CSS and SVG, no script, no CDN.
import { LATENCIES } from './recorder.js';
import type { MarkKind, TimelineMark, TimelineSample } from './recorder.js';
import type { RunReport } from './report.js';

const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);

const fmt = (v: number): string =>
  !Number.isFinite(v) ? '–' : Number.isInteger(v) || v >= 10 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);

/** 1-2-5 ticks covering [0, max]. */
function ticks(max: number, target = 6): number[] {
  if (!(max > 0)) return [0];
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag);
  const out: number[] = [];
  for (let v = 0; v <= max + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

const COLORS = {
  online: '#1f6feb',
  enrolled: '#8b949e',
  rotated: '#2da44e',
  revoked: '#cf222e',
  enroll: '#1f6feb',
  rotate: '#2da44e',
  revoke: '#cf222e',
  disconnect: '#d4a72c',
  phase: '#6e7781',
  rss: '#8250df',
} as const;

interface Frame {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  tMax: number;
  yMax: number;
}

const xOf = (f: Frame, t: number): number => f.x0 + (t / f.tMax) * (f.x1 - f.x0);
const yOf = (f: Frame, v: number): number => f.y1 - (v / f.yMax) * (f.y1 - f.y0);

function line(f: Frame, samples: TimelineSample[], pick: (s: TimelineSample) => number, color: string, width: number, dash = ''): string {
  if (samples.length === 0) return '';
  // a step line: counts change at events, not smoothly
  let d = '';
  for (const s of samples) {
    const x = xOf(f, s.t).toFixed(1);
    const y = yOf(f, pick(s)).toFixed(1);
    d += d === '' ? `M${x},${y}` : `H${x}V${y}`;
  }
  return `<path d="${d}" fill="none" stroke="${color}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''} stroke-linejoin="round"/>`;
}

function axes(f: Frame, yLabel: string, xTicks: number[], yTicks: number[]): string {
  let s = '';
  for (const v of yTicks) {
    const y = yOf(f, v).toFixed(1);
    s += `<line x1="${f.x0}" x2="${f.x1}" y1="${y}" y2="${y}" stroke="#eaeef2"/>`;
    s += `<text x="${f.x0 - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" class="tick">${esc(fmt(v))}</text>`;
  }
  for (const t of xTicks) {
    const x = xOf(f, t).toFixed(1);
    s += `<line x1="${x}" x2="${x}" y1="${f.y1}" y2="${f.y1 + 4}" stroke="#57606a"/>`;
    s += `<text x="${x}" y="${f.y1 + 16}" text-anchor="middle" class="tick">${esc(fmt(t))}</text>`;
  }
  s += `<line x1="${f.x0}" x2="${f.x1}" y1="${f.y1}" y2="${f.y1}" stroke="#57606a"/>`;
  s += `<line x1="${f.x0}" x2="${f.x0}" y1="${f.y0}" y2="${f.y1}" stroke="#57606a"/>`;
  s += `<text x="${f.x0 - 44}" y="${(f.y0 + f.y1) / 2}" transform="rotate(-90 ${f.x0 - 44} ${(f.y0 + f.y1) / 2})" text-anchor="middle" class="axis">${esc(yLabel)}</text>`;
  return s;
}

export function timelineSvg(report: RunReport): string {
  const W = 1100;
  const samples = report.timeline.samples;
  const marks = report.timeline.marks;
  const tMax = Math.max(1, report.durationS, ...samples.map((s) => s.t));
  const total = Math.max(1, report.counts.total);
  const f: Frame = { x0: 70, x1: W - 150, y0: 46, y1: 310, tMax, yMax: total };
  const xTicks = ticks(tMax, 10);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} 480" width="100%" role="img" aria-label="connected devices over time">`;
  svg += axes(f, 'devices', xTicks, ticks(total, 5));

  // phases: what the scenario did, as labelled vertical lines
  marks.filter((m) => m.kind === 'phase').forEach((m, i) => {
    const x = xOf(f, m.t).toFixed(1);
    svg += `<line x1="${x}" x2="${x}" y1="${f.y0 - 30 + (i % 2) * 12}" y2="${f.y1}" stroke="${COLORS.phase}" stroke-dasharray="3 3"/>`;
    svg += `<text x="${Number(x) + 3}" y="${f.y0 - 22 + (i % 2) * 12}" class="phase">${esc(m.label ?? '')}</text>`;
  });

  svg += line(f, samples, (s) => s.enrolled, COLORS.enrolled, 1.5, '5 4');
  svg += line(f, samples, (s) => s.rotated, COLORS.rotated, 1.5);
  svg += line(f, samples, (s) => s.revoked, COLORS.revoked, 1.5);
  svg += line(f, samples, (s) => s.online, COLORS.online, 2.5);

  // event strips under the chart: one row per kind, bar height ∝ events in that second
  const rows: Array<{ kind: MarkKind; label: string; color: string }> = [
    { kind: 'enroll', label: 'enroll', color: COLORS.enroll },
    { kind: 'rotate', label: 'rotate', color: COLORS.rotate },
    { kind: 'revoke', label: 'revoked', color: COLORS.revoke },
    { kind: 'disconnect', label: 'disconnect', color: COLORS.disconnect },
  ];
  const rowH = 26;
  const stripTop = f.y1 + 36;
  // merge the recorder's quarter-second bins into at most ~300 columns
  const binS = Math.max(0.25, Math.ceil((tMax / 300) * 4) / 4);
  const barW = Math.max(1.5, ((f.x1 - f.x0) * binS) / tMax - 0.5);
  rows.forEach((row, i) => {
    const top = stripTop + i * rowH;
    const base = top + rowH - 6;
    const merged = new Map<number, TimelineMark>();
    for (const m of marks) {
      if (m.kind !== row.kind) continue;
      const t = Math.floor(m.t / binS) * binS;
      const cur = merged.get(t);
      if (cur) cur.count += m.count;
      else merged.set(t, { t, kind: m.kind, count: m.count });
    }
    const ofKind = [...merged.values()];
    const max = Math.max(1, ...ofKind.map((m) => m.count));
    svg += `<text x="${f.x0 - 8}" y="${base - 6}" text-anchor="end" class="tick">${row.label}</text>`;
    svg += `<line x1="${f.x0}" x2="${f.x1}" y1="${base}" y2="${base}" stroke="#d0d7de"/>`;
    for (const m of ofKind) {
      const h = Math.max(2, (m.count / max) * (rowH - 8));
      svg += `<rect x="${xOf(f, m.t).toFixed(1)}" y="${(base - h).toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${row.color}"><title>${m.count} ${esc(row.label)} at ${m.t}s</title></rect>`;
    }
    const sum = ofKind.reduce((a, m) => a + m.count, 0);
    svg += `<text x="${f.x1 + 8}" y="${base - 6}" class="tick">${esc(sum.toLocaleString('en-US'))}</text>`;
  });
  svg += `<text x="${(f.x0 + f.x1) / 2}" y="${stripTop + rows.length * rowH + 14}" text-anchor="middle" class="axis">seconds since start</text>`;

  // legend
  const legend: Array<[string, string, string]> = [
    ['connected', COLORS.online, ''], ['enrolled', COLORS.enrolled, '5 4'], ['rotated ≥ 1', COLORS.rotated, ''], ['revoked', COLORS.revoked, ''],
  ];
  legend.forEach(([label, color, dash], i) => {
    const y = f.y0 + 6 + i * 20;
    svg += `<line x1="${f.x1 + 14}" x2="${f.x1 + 40}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="${label === 'connected' ? 2.5 : 1.5}"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`;
    svg += `<text x="${f.x1 + 46}" y="${y}" dominant-baseline="middle" class="legend">${esc(label)}</text>`;
  });
  return `${svg}</svg>`;
}

export function memorySvg(report: RunReport): string {
  const W = 1100;
  const samples = report.timeline.samples;
  const tMax = Math.max(1, report.durationS, ...samples.map((s) => s.t));
  const yMax = Math.max(1, ...samples.map((s) => s.rssMiB)) * 1.1;
  const f: Frame = { x0: 70, x1: W - 150, y0: 14, y1: 150, tMax, yMax };
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} 180" width="100%" role="img" aria-label="simulator memory over time">`;
  svg += axes(f, 'MiB', ticks(tMax, 10), ticks(yMax, 4));
  svg += line(f, samples, (s) => s.rssMiB, COLORS.rss, 2);
  svg += line(f, samples, (s) => s.heapMiB, COLORS.rss, 1.2, '4 3');
  svg += `<line x1="${f.x1 + 14}" x2="${f.x1 + 40}" y1="${f.y0 + 6}" y2="${f.y0 + 6}" stroke="${COLORS.rss}" stroke-width="2"/><text x="${f.x1 + 46}" y="${f.y0 + 6}" dominant-baseline="middle" class="legend">RSS</text>`;
  svg += `<line x1="${f.x1 + 14}" x2="${f.x1 + 40}" y1="${f.y0 + 26}" y2="${f.y0 + 26}" stroke="${COLORS.rss}" stroke-dasharray="4 3"/><text x="${f.x1 + 46}" y="${f.y0 + 26}" dominant-baseline="middle" class="legend">JS heap</text>`;
  return `${svg}</svg>`;
}

const LATENCY_LABEL: Record<(typeof LATENCIES)[number], string> = {
  enroll: 'Enroll', connect: 'Connect', reconnect: 'Reconnect', renew: 'Renew', supersede: 'Successor up → old cert refused', revokeCut: 'Revoke → cut', adminRevoke: 'Admin revoke call',
};

export function renderHtml(report: RunReport): string {
  const c = report.counts;
  const kpi = (label: string, value: string, sub = ''): string =>
    `<div class="kpi"><div class="v">${esc(value)}</div><div class="l">${esc(label)}</div>${sub ? `<div class="s">${esc(sub)}</div>` : ''}</div>`;
  const cut = report.latencyMs.revokeCut;
  const kpis = [
    kpi('devices', c.total.toLocaleString('en-US')),
    kpi('enrolled', c.enrolled.toLocaleString('en-US'), `p50 ${fmt(report.latencyMs.enroll.p50)} ms`),
    kpi('connected at end', c.online.toLocaleString('en-US'), `connect p50 ${fmt(report.latencyMs.connect.p50)} ms`),
    kpi('rotated ≥ 1', c.rotated.toLocaleString('en-US'), report.latencyMs.renew.count ? `renew p50 ${fmt(report.latencyMs.renew.p50)} ms` : ''),
    kpi('revoked', c.revoked.toLocaleString('en-US'), cut.count ? `cut p99 ${fmt(cut.p99)} ms` : ''),
    kpi('memory / device', `${report.memory.rssKiBPerDevice} KiB`, `peak RSS ${report.memory.peakRssMiB} MiB`),
  ].join('');
  const checks = report.checks
    .map((ch) => `<tr class="${ch.ok ? 'ok' : 'bad'}"><td>${ch.ok ? '✔' : '✘'}</td><td>${esc(ch.name)}</td><td>${esc(ch.detail)}</td></tr>`)
    .join('');
  const latency = LATENCIES.filter((n) => report.latencyMs[n].count > 0)
    .map((n) => {
      const s = report.latencyMs[n];
      return `<tr><td>${LATENCY_LABEL[n]}</td><td>${s.count}</td><td>${fmt(s.p50)}</td><td>${fmt(s.p95)}</td><td>${fmt(s.p99)}</td><td>${fmt(s.max)}</td></tr>`;
    })
    .join('');
  const errors = report.errors.length
    ? report.errors.map((e) => `<tr><td><code>${esc(e.kind)}</code></td><td>${e.count}</td></tr>`).join('')
    : '<tr><td colspan="2">none</td></tr>';
  const probeAdmissions = report.probeAdmissions.length
    ? `<h2>Old certificates let in after their successor</h2><div class="card"><table><tr><th>device</th><th>old serial</th><th>t (s)</th><th>accepted</th><th>refused after</th></tr>${report.probeAdmissions
        .map((a) => `<tr class="bad"><td><code>${esc(a.deviceId)}</code></td><td><code>${esc(a.serial)}</code></td><td>${a.t}</td><td>${a.acceptedAttempts}</td><td>${a.refusedAfterMs === null ? 'not within the bound' : `${a.refusedAfterMs} ms`}</td></tr>`)
        .join('')}</table></div>`
    : '';
  const figures = Object.entries(report.figures)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(typeof v === 'number' ? fmt(v) : v)}</td></tr>`)
    .join('');
  const config = Object.entries(report.config)
    .map(([k, v]) => `<tr><td>${esc(k)}</td><td><code>${esc(v)}</code></td></tr>`)
    .join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>enrolld-sim · ${esc(report.scenario)} · ${report.passed ? 'PASS' : 'FAIL'}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:15px;margin:22px 0 8px;color:#424a53;text-transform:uppercase;letter-spacing:.04em}
.sub{color:#57606a;margin-bottom:14px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;font-size:13px;vertical-align:middle;margin-left:8px}
.pass{background:#dafbe1;color:#116329}.fail{background:#ffebe9;color:#a40e26}
.kpis{display:grid;grid-template-columns:repeat(6,1fr);gap:10px}
.kpi{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:10px 12px}
.kpi .v{font-size:22px;font-weight:600}.kpi .l{color:#57606a}.kpi .s{color:#6e7781;font-size:12px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:12px 14px}
table{border-collapse:collapse;width:100%}td,th{padding:4px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{color:#57606a;font-weight:600}td:not(:first-child){font-variant-numeric:tabular-nums}
tr.ok td:first-child{color:#1a7f37}tr.bad td{color:#a40e26;font-weight:600}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:14px}
svg .tick{font-size:11px;fill:#57606a}svg .axis{font-size:12px;fill:#424a53}svg .legend{font-size:12px;fill:#1f2328}svg .phase{font-size:11px;fill:#424a53}
code{font-size:12px}
</style></head><body><main>
<h1>enrolld-sim · ${esc(report.scenario)}<span class="badge ${report.passed ? 'pass' : 'fail'}">${report.passed ? 'PASS' : 'FAIL'}</span></h1>
<div class="sub">${esc(report.description)} — started ${esc(report.startedAt)}, ran ${report.durationS}s</div>
<div class="kpis">${kpis}</div>
<h2>Timeline</h2>
<div class="card">${timelineSvg(report)}</div>
<h2>Expectations</h2>
<div class="card"><table><tr><th></th><th>check</th><th>detail</th></tr>${checks || '<tr><td></td><td colspan="2">no expectations (free run)</td></tr>'}</table></div>
<div class="cols">
<div><h2>Latency (ms)</h2><div class="card"><table><tr><th></th><th>n</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>${latency}</table></div></div>
<div><h2>Errors by kind</h2><div class="card"><table><tr><th>kind</th><th>count</th></tr>${errors}</table></div></div>
</div>
${probeAdmissions}
<div class="cols">
<div><h2>Figures</h2><div class="card"><table>${figures}</table></div></div>
<div><h2>Configuration</h2><div class="card"><table>${config}</table></div></div>
</div>
<h2>Simulator memory</h2>
<div class="card">${memorySvg(report)}</div>
</main></body></html>
`;
}
