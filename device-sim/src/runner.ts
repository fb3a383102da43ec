// Runs one scenario end to end: trust anchor and tokens, fleet, sampling, progress, report files.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createAdminClient } from './admin-client.js';
import type { AdminClient } from './admin-client.js';
import { DEFAULT_RENEWAL } from './renewal.js';
import { Fleet } from './fleet.js';
import type { FleetOptions } from './fleet.js';
import { httpsCall } from './https-request.js';
import type { RunOptions } from './options.js';
import { startProgress } from './progress.js';
import { buildReport } from './report.js';
import type { Check, RunReport } from './report.js';
import { renderHtml } from './report-html.js';
import { renderTables } from './report-table.js';
import { mathRng, seededRng } from './rng.js';
import type { ScenarioContext, ServerHooks } from './scenario.js';
import { SCENARIOS } from './scenarios/registry.js';
import { readTokenCsv } from './tokens.js';
import type { DeviceToken } from './tokens.js';

export interface RunResult {
  report: RunReport;
  files: { json: string; html: string };
}

export interface RunExtras {
  /** hooks from a server this process manages (e.g. --spawn-server); merged over the command-line ones */
  hooks?: Partial<ServerHooks>;
  log?: (message: string) => void;
  /** print the tables to stdout (the CLI does; tests do not) */
  printTables?: boolean;
}

function shellHook(cmd: string): () => Promise<void> {
  return () =>
    new Promise((resolveHook, reject) => {
      execFile('/bin/sh', ['-c', cmd], { timeout: 300_000 }, (err, _stdout, stderr) =>
        err ? reject(new Error(`hook "${cmd}" failed: ${err.message} ${stderr.slice(-500)}`)) : resolveHook(),
      );
    });
}

function hooksFrom(opts: RunOptions, adminToken: string | undefined, ca: string, extra: Partial<ServerHooks> = {}): ServerHooks {
  const hooks: ServerHooks = { describe: 'none' };
  const described: string[] = [];
  if (opts.brokerRestartCmd) {
    hooks.restartBroker = shellHook(opts.brokerRestartCmd);
    described.push('--broker-restart-cmd');
  }
  if (opts.brokerDropUrl) {
    const url = new URL(opts.brokerDropUrl, opts.apiUrl);
    hooks.dropBrokerConnections = async () => {
      const res = await httpsCall({
        what: 'broker-drop', method: 'POST', url, tls: { ca }, timeoutMs: 60_000,
        headers: { 'content-type': 'application/json', ...(adminToken ? { authorization: `Bearer ${adminToken}` } : {}) }, body: '{}',
      });
      if (res.status >= 300) throw new Error(`POST ${url.pathname} answered ${res.status}`);
    };
    described.push('--broker-drop-url');
  }
  if (extra.restartBroker) hooks.restartBroker = extra.restartBroker;
  if (extra.dropBrokerConnections) hooks.dropBrokerConnections = extra.dropBrokerConnections;
  if (extra.killBrokerNode) hooks.killBrokerNode = extra.killBrokerNode;
  if (extra.describe) described.push(extra.describe);
  hooks.describe = described.join(', ') || 'none';
  return hooks;
}

/** `--broker-url` takes one URL or several, comma-separated (the nodes of a cluster). */
export function brokerUrlsOf(text: string): URL[] {
  const urls = text.split(',').map((u) => u.trim()).filter(Boolean);
  if (urls.length === 0) throw new Error('no broker URL');
  return urls.map((u) => new URL(u));
}

async function readSecretFile(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

export async function runScenario(opts: RunOptions, extras: RunExtras = {}): Promise<RunResult> {
  const log = extras.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const scenario = SCENARIOS[opts.scenario];
  const startedAt = new Date();
  const caFile = resolve(opts.caFile ?? join(opts.home, 'ca', 'root.pem'));
  if (!existsSync(caFile)) throw new Error(`no trust anchor at ${caFile}: pass --ca or --home (ENROLLD_HOME) of a server that has run`);
  const ca = await readFile(caFile, 'utf8');
  const adminTokenFile = opts.adminTokenFile ?? join(opts.home, 'admin-token');
  const adminToken = existsSync(adminTokenFile) ? await readSecretFile(adminTokenFile) : undefined;
  const apiUrl = new URL(opts.apiUrl);
  const admin: AdminClient | undefined = adminToken ? createAdminClient(apiUrl, ca, adminToken) : undefined;

  let tokens: DeviceToken[];
  if (opts.tokensCsv) {
    tokens = (await readTokenCsv(opts.tokensCsv)).slice(0, opts.devices);
    if (tokens.length < opts.devices) log(`note: ${opts.tokensCsv} holds ${tokens.length} tokens; running ${tokens.length} devices`);
  } else if (admin) {
    const prefix = opts.tokenPrefix ?? `sim-${randomBytes(3).toString('hex')}-`;
    log(`creating ${opts.devices} bootstrap tokens (prefix ${prefix}) through the admin API`);
    tokens = (await admin.createTokens(prefix, opts.devices)).map((t) => ({ deviceId: t.deviceId, token: t.token }));
  } else {
    throw new Error(`no tokens: pass --tokens tokens.csv, or an admin token (--admin-token-file, default ${adminTokenFile})`);
  }

  const rng = opts.seed === undefined ? mathRng : seededRng(opts.seed);
  const fleetOpts: FleetOptions = {
    apiUrl,
    brokerUrls: brokerUrlsOf(opts.brokerUrl),
    ca,
    sendChain: opts.sendChain,
    enrollVia: opts.enrollVia,
    renewVia: opts.renewVia,
    enrollConcurrency: opts.enrollConcurrency,
    connectConcurrency: opts.connectConcurrency,
    connectRate: opts.connectRate,
    rampPerSecond: opts.rampPerSecond,
    seed: opts.seed,
    httpTimeoutMs: 30_000,
    mqttConnectTimeoutMs: 15_000,
    keepaliveSeconds: 60,
    device: {
      telemetryIntervalMs: opts.telemetryIntervalMs,
      qos: opts.qos,
      echo: opts.echo,
      reconnect: { baseMs: opts.reconnectBaseMs, capMs: opts.reconnectCapMs, floorMs: 50 },
      retry: { baseMs: 500, capMs: 10_000, floorMs: 100 },
      maxEnrollAttempts: 8,
      renewal: DEFAULT_RENEWAL,
      ...(opts.rotateAfterMs !== undefined ? { rotateAfterMs: opts.rotateAfterMs } : {}),
      ...(opts.probeOldCertAfterMs !== undefined ? { probeOldCertAfterMs: opts.probeOldCertAfterMs, oldCertBoundMs: opts.oldCertBoundMs } : {}),
      hintJitterMs: 2_000,
      tlsRefusalsToStop: opts.tlsRefusalsToStop,
      retryAfterCapMs: 60_000,
      mqttRenewTimeoutMs: 20_000,
    },
  };
  const fleet = new Fleet(tokens, fleetOpts);
  const checks: Check[] = [];
  const figures: Record<string, number | string> = {};
  // memory per device is read when the most devices were online, which is what a sizing question asks
  let bestMemory = fleet.memoryPerDevice();
  let bestOnline = -1;
  const sampleEvery = opts.durationMs > 300_000 ? 2_000 : 500;
  const sampler = setInterval(() => {
    const s = fleet.recorder.sample(fleet.devices);
    if (s.online >= bestOnline && s.online > 0) {
      bestOnline = s.online;
      bestMemory = fleet.memoryPerDevice();
    }
  }, sampleEvery);
  fleet.recorder.sample(fleet.devices);
  const progress = opts.progress ? startProgress(fleet, scenario.name) : undefined;

  const ctx: ScenarioContext = {
    fleet,
    opts,
    admin,
    hooks: hooksFrom(opts, adminToken, ca, extras.hooks),
    rng,
    check: (name, ok, detail) => void checks.push({ name, ok, detail }),
    figure: (name, value) => void (figures[name] = value),
    phase: (label) => fleet.recorder.phase(label),
    log: (m) => log(m),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
  try {
    await scenario.run(ctx);
  } catch (err) {
    checks.push({ name: 'scenario ran to the end', ok: false, detail: (err as Error).message });
  } finally {
    clearInterval(sampler);
    fleet.recorder.sample(fleet.devices);
    progress?.stop();
  }
  const report = buildReport({
    fleet,
    scenario: scenario.name,
    description: scenario.description,
    startedAt,
    checks,
    figures: { ...figures, 'devices in this process': fleet.devices.length, 'server hooks': ctx.hooks.describe },
    memoryPerDevice: bestMemory,
    config: {
      devices: opts.devices, apiUrl: opts.apiUrl, brokerUrl: opts.brokerUrl, caFile, enrollVia: opts.enrollVia, renewVia: opts.renewVia,
      telemetryIntervalMs: opts.telemetryIntervalMs, qos: opts.qos, echo: opts.echo, sendChain: opts.sendChain,
      enrollConcurrency: opts.enrollConcurrency, connectConcurrency: opts.connectConcurrency, connectRate: opts.connectRate,
      reconnectBackoff: `${opts.reconnectBaseMs}ms…${opts.reconnectCapMs}ms full jitter`, tlsRefusalsToStop: opts.tlsRefusalsToStop, tokens: opts.tokensCsv ? 'csv' : 'admin API',
      ...(opts.rotateAfterMs !== undefined ? { rotateAfterMs: opts.rotateAfterMs } : {}),
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    },
  });
  await fleet.stop();
  admin?.close();

  await mkdir(opts.reportDir, { recursive: true });
  const base = opts.reportName ?? `sim-report-${scenario.name}-${startedAt.toISOString().replace(/[:.]/g, '-')}`;
  const files = { json: resolve(opts.reportDir, `${base}.json`), html: resolve(opts.reportDir, `${base}.html`) };
  await writeFile(files.json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(files.html, renderHtml(report));
  if (extras.printTables !== false) process.stdout.write(`${renderTables(report)}\nreport: ${files.json}\n        ${files.html}\n`);
  return { report, files };
}
