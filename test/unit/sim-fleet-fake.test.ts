// Fleets and scenarios end to end against the in-process fake stack (real TLS, real aedes, fake CA). The same
// scenarios run against the real server in test/e2e/sim-fleet.test.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { freePort, main, parseCli, resolveOptions, runScenario } from '@enrolld/device-sim';
import type { RunOptions } from '@enrolld/device-sim';
import { FakeStack } from '../support/sim-fake-stack.js';

const reportDir = mkdtempSync(join(tmpdir(), 'sim-reports-'));
afterAll(() => rmSync(reportDir, { recursive: true, force: true }));

let stack: FakeStack;
beforeAll(async () => {
  stack = new FakeStack();
  await stack.start();
});
afterAll(async () => stack.stop());
afterEach(() => {
  stack.certLifetimeSeconds = 3600;
  stack.successorLifetimeSeconds = undefined;
  stack.supersedeOnConnect = true;
  stack.refuseRevokedAtTls = false;
  stack.partitioned.clear();
});

const quiet = { log: () => {}, printTables: false };
function opts(o: Partial<RunOptions>): RunOptions {
  return resolveOptions({
    apiUrl: stack.apiUrl, brokerUrl: stack.brokerUrl, home: stack.home, reportDir, progress: false, seed: 7,
    warmupMs: 800, holdMs: 1_500, timeoutMs: 30_000, ...o,
  });
}

describe('scenarios against the fake stack', () => {
  it('showcase: all enroll (REST+EST), connect, a service commands every device, rotate once (REST/EST/MQTT), revoked ones are cut and stay out, the rest keep publishing', async () => {
    const { report, files } = await runScenario(opts({ scenario: 'showcase', devices: 12, revokeCount: 3, reportName: 'showcase' }), quiet);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.passed).toBe(true);
    expect(report.counts).toMatchObject({ total: 12, enrolled: 12, rotated: 12, revoked: 3, online: 9 });
    expect(report.transports.enroll).toEqual({ rest: 6, est: 6 });
    expect(report.transports.renew).toEqual({ rest: 4, est: 4, mqtt: 4 });
    expect(report.latencyMs.revokeCut.count).toBe(3);
    expect(report.counters.oldCertAccepted).toBe(0);
    // The service heard every device and each one acknowledged its command.
    expect(report.figures).toMatchObject({ 'service: devices heard': 12, 'service: commands sent': 12, 'service: command acks received': 12 });
    expect(report.figures['command round trip p50 (ms)']).toEqual(expect.any(Number));
    const json = JSON.parse(readFileSync(files.json, 'utf8')) as { timeline: { samples: unknown[] } };
    expect(json.timeline.samples.length).toBeGreaterThan(3);
    const html = readFileSync(files.html, 'utf8');
    expect(html).toContain('<svg');
    expect(/<script|(src|href)=["']?https?:|@import/.test(html)).toBe(false); // self-contained: nothing fetched
    // no secret in the report: tokens and keys stay in memory
    for (const t of stack.tokens.keys()) expect(html.includes(t) || readFileSync(files.json, 'utf8').includes(t)).toBe(false);
    expect(html).not.toContain('PRIVATE KEY');
  });

  it('rotation-wave: short-lived certs make every device renew by itself at ~2/3 of the lifetime', async () => {
    stack.certLifetimeSeconds = 6;
    // One wave: the successors live long. With 6 s successors, the devices that rotated first rotated again while the
    // scenario counted the fleet online, and a device caught mid-reconnect counted as offline (more likely on a busy machine).
    stack.successorLifetimeSeconds = 3600;
    const { report } = await runScenario(opts({ scenario: 'rotation-wave', devices: 8, renewVia: 'mix', maxLifetimeMs: 10_000 }), quiet);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.counts.rotated).toBe(8);
    expect(report.probeAdmissions).toEqual([]);
  });

  it('soak fails its online-at-the-end check for a device that never comes back, and names its state', async () => {
    const devices = 5;
    // Once bring-up reports the fleet connected, one device is cut off from the broker for good.
    let victim: string | undefined;
    const log = (message: string) => {
      if (victim === undefined && / connected in /.test(message)) {
        victim = [...stack.clients.keys()][0];
        if (victim !== undefined) stack.partition(victim);
      }
    };
    const { report } = await runScenario(opts({ scenario: 'soak', devices, durationMs: 6_000, reconnectCapMs: 1_000, reportName: 'soak-partition' }), { log, printTables: false });
    expect(victim).toBeDefined();
    expect(report.checks.find((c) => c.name === 'all devices connected')?.ok).toBe(true);
    const online = report.checks.find((c) => c.name.startsWith('≥ 99% of non-revoked devices online at the end'));
    expect(online?.ok).toBe(false);
    expect(online?.name).toContain('within 11 s');
    expect(online?.detail).toMatch(/^4\/5 after 1\d(\.\d)? s; offline: (waiting|connecting) ×1/);
    expect(report.passed).toBe(false);
  }, 60_000);

  it('rotation-wave fails (exit non-zero) when the server still accepts the old cert', async () => {
    stack.supersedeOnConnect = false;
    const { report } = await runScenario(opts({ scenario: 'rotation-wave', devices: 4, rotateAfterMs: 500, oldCertBoundMs: 2_000 }), quiet);
    expect(report.passed).toBe(false);
    expect(report.checks.find((c) => c.name.startsWith('no old cert accepted'))?.ok).toBe(false);
    expect(report.counters.oldCertAccepted).toBe(4);
    // Each one is named, so it can be found in the server's log.
    expect(report.probeAdmissions).toHaveLength(4);
    expect(new Set(report.probeAdmissions.map((a) => a.deviceId)).size).toBe(4);
    for (const a of report.probeAdmissions) {
      expect(a.refusedAfterMs).toBeNull();
      expect(a.acceptedAttempts).toBeGreaterThanOrEqual(1);
    }
  });

  it('revoke-mid-session: K of N cut, measured from the device side', async () => {
    const { report } = await runScenario(opts({ scenario: 'revoke-mid-session', devices: 10, revokeCount: 4, enrollVia: 'est' }), quiet);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.latencyMs.revokeCut.count).toBe(4);
    // The revoked devices' refusals at reconnect are what the revocation asked for: counted apart, not as errors.
    expect(report.counters.expectedRefusals).toBe(4);
    expect(report.errors).toEqual([]);
  });

  it('revoke-mid-session: a broker that refuses revoked certs at TLS (bare close) still leaves them stopped as revoked', async () => {
    stack.refuseRevokedAtTls = true;
    // the inference is opt-in (--tls-refusals-to-stop) for brokers that do not answer CONNACK 5
    const { report } = await runScenario(opts({ scenario: 'revoke-mid-session', devices: 6, revokeCount: 2, reconnectBaseMs: 100, reconnectCapMs: 400, tlsRefusalsToStop: 3 }), quiet);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.stopReasons).toEqual({ revoked: 2 }); // the report is taken before the fleet shuts down
    expect(report.errors).toEqual([{ kind: 'connect-tls-refused', count: 6 }]);
  });

  it('reconnect-storm: a broker restart through the hook; every non-revoked device returns, revoked ones do not', async () => {
    const { report } = await runScenario(
      opts({ scenario: 'reconnect-storm', devices: 15, revokeCount: 2, reconnectBaseMs: 200, reconnectCapMs: 2_000 }),
      { ...quiet, hooks: { restartBroker: () => stack.restartBroker(300), describe: 'fake restart' } },
    );
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(typeof report.figures['time to 99% back (s)']).toBe('number');
    expect(report.figures['storm trigger']).toContain('broker restart');
  });

  it('several broker URLs: devices are spread over them, and a device whose broker is down tries the next one', async () => {
    // the second URL is a port nobody listens on: half the devices start there, are refused, and move to the first
    const down = `mqtts://localhost:${await freePort()}`;
    const { report, files } = await runScenario(opts({ scenario: 'run', devices: 8, durationMs: 300, brokerUrl: `${stack.brokerUrl},${down}`, reconnectBaseMs: 100, reconnectCapMs: 300 }), quiet);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.counts.online).toBe(8);
    expect(report.errors).toContainEqual({ kind: 'connect-econnrefused', count: 4 });
    expect(readFileSync(files.json, 'utf8')).toContain(down);
  });

  it('reconnect-storm --storm-trigger kill-node without a cluster says what it needs', async () => {
    const { report } = await runScenario(opts({ scenario: 'reconnect-storm', stormTrigger: 'kill-node', devices: 2 }), quiet);
    expect(report.checks.find((c) => !c.ok)?.detail).toMatch(/--spawn-cluster/);
  });

  it('reconnect-storm without a server hook falls back to a client-side drop', async () => {
    const { report } = await runScenario(opts({ scenario: 'reconnect-storm', devices: 6, reconnectBaseMs: 200, reconnectCapMs: 1_000 }), quiet);
    expect(report.passed).toBe(true);
    expect(report.figures['storm trigger']).toContain('client-side');
  });
});

describe('CLI', () => {
  it('exits 2 with a clear message when there is no trust anchor', async () => {
    const home = mkdtempSync(join(tmpdir(), 'sim-nohome-'));
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => (errors.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
      expect(await main(['run', '--home', home, '--devices', '1', '--no-progress'])).toBe(2);
    } finally {
      process.stderr.write = write;
      rmSync(home, { recursive: true, force: true });
    }
    expect(errors.join('')).toMatch(/no trust anchor/);
  });

  it('exits 2 on a bad flag and 0 for list', async () => {
    const write = process.stderr.write.bind(process.stderr);
    const out = process.stdout.write.bind(process.stdout);
    process.stderr.write = (() => true) as typeof process.stderr.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      expect(await main(['run', '--enroll-via', 'carrier-pigeon'])).toBe(2);
      expect(await main(['reconnect-storm', '--spawn-cluster', '0', '--database-url', 'postgres://x/y'])).toBe(2);
      expect(await main(['reconnect-storm', '--spawn-cluster', '2', '--spawn-server', '--database-url', 'postgres://x/y'])).toBe(2);
      expect(await main(['list'])).toBe(0);
    } finally {
      process.stderr.write = write;
      process.stdout.write = out;
    }
  });

  it('--broker-url repeated or comma-separated names every node; --spawn-cluster takes the database from --database-url or DATABASE_URL', () => {
    expect(parseCli(['run', '--broker-url', 'mqtts://a:1', '--broker-url', 'mqtts://b:2,mqtts://c:3']).options.brokerUrl).toBe('mqtts://a:1,mqtts://b:2,mqtts://c:3');
    expect(parseCli(['reconnect-storm', '--spawn-cluster', '3', '--database-url', 'postgres://h/db']).spawnCluster).toEqual({ brokers: 3, databaseUrl: 'postgres://h/db' });
    const saved = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      expect(() => parseCli(['reconnect-storm', '--spawn-cluster', '2'])).toThrow(/--database-url/);
    } finally {
      if (saved !== undefined) process.env.DATABASE_URL = saved;
    }
  });

  it('runs a scenario from the command line against the fake stack, exit 0 and report files', async () => {
    const out = process.stdout.write.bind(process.stdout);
    const chunks: string[] = [];
    process.stdout.write = ((c: string) => (chunks.push(String(c)), true)) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(['enroll-storm', '--devices', '5', '--hold', '500ms', '--api-url', stack.apiUrl, '--broker-url', stack.brokerUrl, '--home', stack.home,
        '--report-dir', reportDir, '--report-name', 'cli', '--no-progress']);
    } finally {
      process.stdout.write = out;
    }
    expect(code).toBe(0);
    expect(chunks.join('')).toContain('enroll-storm · 5 devices');
    expect(existsSync(join(reportDir, 'cli.html'))).toBe(true);
  });
});
