// `npm run demo`: the README showcase. Starts enrolld on the embedded default (temp home, free ports), runs 50
// devices through enroll → telemetry → rotation → revoking a few, prints the report and stops everything.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveOptions } from './options.js';
import { REPO_ROOT } from './server-process.js';
import { runWithSpawnedServer } from './spawned-run.js';

export async function demo(argv: string[]): Promise<number> {
  const devices = Number(argv.find((a) => /^\d+$/.test(a)) ?? 50);
  const reportDir = join(REPO_ROOT, 'sim-report-demo');
  mkdirSync(reportDir, { recursive: true });
  const opts = resolveOptions({ scenario: 'showcase', devices, revokeCount: Math.max(1, Math.round(devices / 10)), reportDir, reportName: 'demo', seed: 42 });
  const { report, files, serverLog } = await runWithSpawnedServer(opts, { logFile: join(reportDir, 'server.log') });
  process.stdout.write(`\nOpen ${files.html} in a browser for the timeline. Server log: ${serverLog}\n`);
  return report.passed ? 0 : 1;
}

if (process.argv[1] && /demo\.(ts|js)$/.test(process.argv[1])) {
  demo(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`demo: ${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
