// A run against a server this process starts itself (`--spawn-server`, `npm run demo`, the e2e test):
// the server's home gives the trust anchor and admin token, and restarting it is the reconnect-storm hook; or against
// the local cluster form (`--spawn-cluster N`), where killing one broker node is.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { ClusterProcess } from './cluster-process.js';
import type { ClusterProcessOptions } from './cluster-process.js';
import type { RunOptions } from './options.js';
import { runScenario } from './runner.js';
import type { RunExtras, RunResult } from './runner.js';
import { ServerProcess } from './server-process.js';
import type { ServerProcessOptions } from './server-process.js';

export async function runWithSpawnedServer(
  opts: RunOptions,
  server: ServerProcessOptions,
  extras: RunExtras = {},
): Promise<RunResult & { serverLog: string }> {
  const log = extras.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const env = { ...server.env };
  // rotation-wave needs short-lived certs; the server reads CERT_LIFETIME (server/src/config.ts)
  if (opts.scenario === 'rotation-wave' && env.CERT_LIFETIME === undefined && opts.rotateAfterMs === undefined) {
    env.CERT_LIFETIME = '60s';
    // the lifetime includes the backdate (docs/architecture.md), and the default 5 min backdate would make 60 s certs
    // expired at birth
    env.CERT_BACKDATE ??= '5s';
  }
  // the server log outlives the temp home: it goes beside the report
  mkdirSync(opts.reportDir, { recursive: true });
  const proc = new ServerProcess({ logFile: resolve(opts.reportDir, 'enrolld-server.log'), ...server, env });
  log(`starting enrolld (ENROLLD_HOME=${proc.home}; log ${proc.logFile})`);
  const t0 = performance.now();
  await proc.start();
  log(`enrolld is up in ${((performance.now() - t0) / 1000).toFixed(1)}s: API ${proc.apiUrl}, broker ${proc.brokerUrl}`);
  try {
    const result = await runScenario(
      { ...opts, apiUrl: proc.apiUrl, brokerUrl: proc.brokerUrl, home: proc.home, caFile: proc.caFile, adminTokenFile: proc.adminTokenFile },
      {
        ...extras,
        log,
        hooks: {
          restartBroker: async () => {
            log('restarting enrolld (same home, same ports)');
            await proc.restart();
          },
          describe: 'spawned server restart',
          ...extras.hooks,
        },
      },
    );
    return { ...result, serverLog: proc.logFile };
  } finally {
    log('stopping enrolld');
    await proc.dispose();
  }
}

/**
 * A run against the local cluster form this process starts itself (`--spawn-cluster N`): one API and N brokers of one
 * Redis cluster (`server/scripts/cluster.mjs`), devices spread over the brokers. Its hook is the node kill: SIGKILL
 * of the first broker.
 */
export async function runWithSpawnedCluster(opts: RunOptions, cluster: ClusterProcessOptions, extras: RunExtras = {}): Promise<RunResult & { clusterLog: string; clusterPrefix: string }> {
  const log = extras.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  mkdirSync(opts.reportDir, { recursive: true });
  const proc = new ClusterProcess({ logFile: resolve(opts.reportDir, 'enrolld-cluster.log'), ...cluster });
  log(`starting the cluster: 1 API + ${cluster.brokers} brokers (ENROLLD_HOME=${proc.home}; log ${proc.logFile})`);
  const t0 = performance.now();
  try {
    await proc.start();
    log(`cluster is up in ${((performance.now() - t0) / 1000).toFixed(1)}s: API ${proc.apiUrl}, brokers ${proc.brokerUrls.join(' ')}`);
    const result = await runScenario(
      { ...opts, apiUrl: proc.apiUrl, brokerUrl: proc.brokerUrls.join(','), home: proc.home, caFile: proc.caFile, adminTokenFile: proc.adminTokenFile },
      {
        ...extras,
        log,
        hooks: {
          killBrokerNode: async () => {
            const url = proc.brokerUrls[0]!;
            log(`SIGKILL to the broker at ${url}`);
            return proc.killBroker(0);
          },
          describe: 'spawned cluster node kill',
          ...extras.hooks,
        },
      },
    );
    return { ...result, clusterLog: proc.logFile, clusterPrefix: proc.prefix };
  } finally {
    log('stopping the cluster');
    await proc.dispose();
  }
}
