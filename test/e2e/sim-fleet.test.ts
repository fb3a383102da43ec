// The simulator against the real stack: `enrolld up` as a child process (embedded Postgres, real TLS, the real
// broker), driven only through the wire protocols. The simulator's acceptance run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { resolveOptions, runWithSpawnedServer } from '@enrolld/device-sim';

const reportDir = mkdtempSync(join(tmpdir(), 'sim-e2e-'));
afterAll(() => rmSync(reportDir, { recursive: true, force: true }));
const quiet = { log: () => {}, printTables: false };

describe('device-sim fleet against enrolld up', () => {
  it('50 devices enroll (REST+EST), connect, rotate once (REST/EST/MQTT); the revoked are cut and cannot reconnect; the rest keep publishing', async () => {
    const opts = resolveOptions({ scenario: 'showcase', devices: 50, revokeCount: 5, reportDir, reportName: 'showcase', progress: false, seed: 6, timeoutMs: 90_000 });
    const { report } = await runWithSpawnedServer(opts, { logFile: join(reportDir, 'showcase-server.log') }, quiet);
    const failed = report.checks.filter((c) => !c.ok);
    expect(failed).toEqual([]);
    expect(report.counts).toMatchObject({ total: 50, enrolled: 50, rotated: 50, revoked: 5, online: 45 });
    expect(report.transports.enroll).toEqual({ rest: 25, est: 25 });
    expect(Object.keys(report.transports.renew).sort()).toEqual(['est', 'mqtt', 'rest']);
    expect(report.counters.oldCertAccepted).toBe(0);
    expect(report.counters.oldCertProbes).toBe(50);
    expect(report.latencyMs.revokeCut.count).toBe(5);
  }, 240_000);

  it('reconnect storm: the stack restarts under 40 connected devices; all non-revoked come back, revoked stay out', async () => {
    const opts = resolveOptions({
      scenario: 'reconnect-storm', devices: 40, revokeCount: 3, reconnectBaseMs: 500, reconnectCapMs: 4_000,
      reportDir, reportName: 'storm', progress: false, seed: 3, timeoutMs: 90_000,
    });
    const { report } = await runWithSpawnedServer(opts, { logFile: join(reportDir, 'storm-server.log') }, quiet);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.figures['storm trigger']).toContain('broker restart');
    expect(report.counts.revoked).toBe(3);
    expect(report.counts.online).toBe(37);
  }, 240_000);
});
