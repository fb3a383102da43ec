// The soak scenario, CI-sized, against `enrolld up` as a child process: 150 devices on 30-second certificates for
// three minutes, so every device renews about eight times while telemetry, forced rotations, network blips and
// revocations run beside it. Revocation bookkeeping must keep up with rotation (docs/architecture.md §7, §8): no
// device expires, every old certificate is refused after its successor connects, and the server never answers 5xx.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { resolveOptions, runWithSpawnedServer } from '@enrolld/device-sim';

const reportDir = mkdtempSync(join(tmpdir(), 'sim-soak-e2e-'));
afterAll(() => rmSync(reportDir, { recursive: true, force: true }));
const quiet = { log: () => {}, printTables: false };

const DEVICES = 150;
const SOAK_MS = 180_000;

describe('soak against enrolld up', () => {
  it('150 devices on 30 s certificates for 3 minutes: none expires, old certificates are refused, no 5xx', async () => {
    const opts = resolveOptions({ scenario: 'soak', devices: DEVICES, durationMs: SOAK_MS, reportDir, reportName: 'soak', progress: false, seed: 10 });
    const server = { logFile: join(reportDir, 'soak-server.log'), env: { CERT_LIFETIME: '30s', CERT_BACKDATE: '5s' } };
    const { report } = await runWithSpawnedServer(opts, server, quiet);
    // The simulator's RSS-slope check measures the process it runs in: here that is the jest worker, whose memory is
    // jest's as much as the simulator's. It is the subject of a standalone `npm run sim -- soak`, not of this test.
    const serverChecks = report.checks.filter((c) => !c.name.startsWith('RSS slope'));
    expect(serverChecks.length).toBe(report.checks.length - 1);
    expect(serverChecks.filter((c) => !c.ok)).toEqual([]);
    expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['no device expired', 'no 5xx answers']));
    expect(report.counts.enrolled).toBe(DEVICES);
    expect(report.stopReasons.expired ?? 0).toBe(0);
    // 3 minutes on 30 s certificates: every device renewed several times, and each rotation's old cert was probed
    expect(report.counters.renewals).toBeGreaterThanOrEqual(DEVICES * 4);
    expect(report.counters.oldCertProbes).toBeGreaterThan(0);
    expect(report.counters.oldCertAccepted).toBe(0);
    expect(report.errors.filter((e) => /-http-5\d\d/.test(e.kind))).toEqual([]);
  }, SOAK_MS + 180_000);
});
