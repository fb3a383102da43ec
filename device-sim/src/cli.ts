// enrolld-sim: simulated device fleets against an enrolld server.
import { parseArgs } from 'node:util';
import { isRevocationReason } from '@enrolld/protocol';
import { DEFAULTS, PRESETS, SCENARIO_NAMES, parseDurationMs, resolveOptions } from './options.js';
import type { RunOptions, ScenarioName, StormTrigger } from './options.js';
import { runScenario } from './runner.js';
import { SCENARIOS } from './scenarios/registry.js';
import { runWithSpawnedCluster, runWithSpawnedServer } from './spawned-run.js';

const USAGE = `enrolld-sim — simulated device fleets for enrolld

usage:
  enrolld-sim run [--scenario NAME] [--devices N] [options]
  enrolld-sim NAME [options]                 same as run --scenario NAME
  enrolld-sim list                           scenarios and what they check

server and trust (defaults find a local 'npm start'):
  --api-url URL             default ${DEFAULTS.apiUrl}
  --broker-url URL[,URL…]   default ${DEFAULTS.brokerUrl}; several (repeat it or separate by commas) for the nodes
                            of a cluster: devices are spread over them and try the next one on reconnect
  --home DIR                ENROLLD_HOME (default $ENROLLD_HOME or ./.enrolld): ca/root.pem, admin-token
  --ca FILE                 trust anchor (default <home>/ca/root.pem)
  --admin-token-file FILE   default <home>/admin-token; needed for API tokens and revocation
  --tokens FILE             tokens CSV (deviceId,token,expiresAt) instead of creating tokens
  --token-prefix P          device id prefix for API-created tokens (default sim-<random>-)
  --spawn-server            start 'enrolld up' as a child (temp home, free ports, embedded Postgres)
  --server-env K=V          extra env for --spawn-server / --spawn-cluster (repeatable), e.g. CERT_LIFETIME=60s
                            (its log goes to <report-dir>/enrolld-server.log; ENROLLD_SIM_KEEP_HOME=1 keeps its home)
  --spawn-cluster N         start the local cluster form instead (npm run cluster: 1 API + N 'enrolld broker' on Redis),
                            temp home, free ports, its own Redis prefix; needs --database-url (an empty database)
  --database-url URL        Postgres for --spawn-cluster (default $DATABASE_URL); REDIS_URL as for the server

devices:
  --devices N               fleet size (scenario presets: enroll-storm 1000, showcase 50; else ${DEFAULTS.devices})
  --enroll-via rest|est|mix     --renew-via rest|est|mqtt|mix
  --telemetry-interval D    e.g. 1s, 500ms (0 = none)      --qos 0|1
  --echo                    devices also subscribe to their own telemetry (proves routing)
  --leaf-only               present only the leaf over mTLS (default: leaf + intermediates)
  --backoff-base D --backoff-cap D   reconnect backoff (full jitter)
  --rotate-after D          force one renewal this long after connecting
  --probe-old-cert-after D  after a rotation, CONNECT with the old cert (must be refused)
  --old-cert-bound D        … and keep probing each second until refused, for at most this long (default 5s)
  --tls-refusals-to-stop N  for brokers that refuse with a bare TLS close instead of CONNACK 5: N such refusals in
                            a row are taken as "revoked" (default 0 = off; enrolld answers CONNACK 5)

load shaping:
  --enroll-concurrency N  --connect-concurrency N  --connect-rate N/s  --ramp N/s  --seed N

scenario knobs:
  --duration D  --timeout D  --warmup D  --hold D  --revoke K  --revoke-reason R  --cut-bound D
  --max-lifetime D  --storm-trigger auto|restart|drop|client|kill-node  --max-rss-slope MiB/min
                            kill-node (auto with --spawn-cluster): SIGKILL one broker node; its devices must come back
                            on another, and the --revoke K devices (half before, half during the failover) stay out
  --broker-restart-cmd CMD  --broker-drop-url URL   (server-side hooks for reconnect-storm)

report:
  --report-dir DIR  --report-name NAME  --no-progress

Exit status: 0 when every expectation held, 1 when one failed, 2 on a usage or setup error.
`;

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} wants a non-negative number, got "${v}"`);
  return n;
};
const dur = (v: string | undefined): number | undefined => (v === undefined ? undefined : parseDurationMs(v));
function oneOf<T extends string>(v: string | undefined, allowed: readonly T[], name: string): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

export interface ParsedCli {
  command: 'run' | 'list' | 'help';
  options: Partial<RunOptions>;
  spawnServer: boolean;
  serverEnv: Record<string, string>;
  /** --spawn-cluster N: broker count and the database for the cluster */
  spawnCluster?: { brokers: number; databaseUrl: string };
}

export function parseCli(argv: string[]): ParsedCli {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      scenario: { type: 'string' }, devices: { type: 'string', short: 'n' },
      'api-url': { type: 'string' }, 'broker-url': { type: 'string', multiple: true }, home: { type: 'string' }, ca: { type: 'string' },
      'admin-token-file': { type: 'string' }, tokens: { type: 'string' }, 'token-prefix': { type: 'string' },
      'spawn-server': { type: 'boolean' }, 'spawn-cluster': { type: 'string' }, 'database-url': { type: 'string' }, 'server-env': { type: 'string', multiple: true },
      'enroll-via': { type: 'string' }, 'renew-via': { type: 'string' }, 'telemetry-interval': { type: 'string' }, qos: { type: 'string' },
      echo: { type: 'boolean' }, 'leaf-only': { type: 'boolean' }, 'backoff-base': { type: 'string' }, 'backoff-cap': { type: 'string' },
      'rotate-after': { type: 'string' }, 'tls-refusals-to-stop': { type: 'string' }, 'old-cert-bound': { type: 'string' }, 'probe-old-cert-after': { type: 'string' },
      'enroll-concurrency': { type: 'string' }, 'connect-concurrency': { type: 'string' }, 'connect-rate': { type: 'string' }, ramp: { type: 'string' },
      seed: { type: 'string' }, duration: { type: 'string' }, timeout: { type: 'string' }, warmup: { type: 'string' }, hold: { type: 'string' },
      revoke: { type: 'string' }, 'revoke-reason': { type: 'string' }, 'cut-bound': { type: 'string' }, 'max-lifetime': { type: 'string' },
      'storm-trigger': { type: 'string' }, 'max-rss-slope': { type: 'string' }, 'broker-restart-cmd': { type: 'string' }, 'broker-drop-url': { type: 'string' },
      'report-dir': { type: 'string' }, 'report-name': { type: 'string' }, 'no-progress': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  const [first] = positionals;
  if (values.help || first === 'help' || first === undefined) return { command: 'help', options: {}, spawnServer: false, serverEnv: {} };
  if (first === 'list') return { command: 'list', options: {}, spawnServer: false, serverEnv: {} };
  let scenario = oneOf(values.scenario, SCENARIO_NAMES, 'scenario');
  if (first !== 'run') {
    scenario = oneOf(first, SCENARIO_NAMES, 'command (a scenario name)');
  }
  const qos = values.qos === undefined ? undefined : values.qos === '1' ? 1 : values.qos === '0' ? 0 : undefined;
  if (values.qos !== undefined && qos === undefined) throw new Error('--qos must be 0 or 1');
  const reason = values['revoke-reason'];
  if (reason !== undefined && !isRevocationReason(reason)) throw new Error(`--revoke-reason: "${reason}" is not an RFC 5280 reason name`);
  const serverEnv: Record<string, string> = {};
  for (const kv of values['server-env'] ?? []) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new Error(`--server-env wants K=V, got "${kv}"`);
    serverEnv[kv.slice(0, at)] = kv.slice(at + 1);
  }
  const options: Partial<RunOptions> = {
    ...(scenario ? { scenario: scenario as ScenarioName } : {}),
    devices: num(values.devices, 'devices'),
    apiUrl: values['api-url'], brokerUrl: values['broker-url']?.join(','), home: values.home, caFile: values.ca,
    adminTokenFile: values['admin-token-file'], tokensCsv: values.tokens, tokenPrefix: values['token-prefix'],
    enrollVia: oneOf(values['enroll-via'], ['rest', 'est', 'mix'] as const, 'enroll-via'),
    renewVia: oneOf(values['renew-via'], ['rest', 'est', 'mqtt', 'mix'] as const, 'renew-via'),
    telemetryIntervalMs: dur(values['telemetry-interval']),
    ...(qos !== undefined ? { qos } : {}),
    ...(values.echo ? { echo: true } : {}),
    ...(values['leaf-only'] ? { sendChain: false } : {}),
    oldCertBoundMs: dur(values['old-cert-bound']),
    tlsRefusalsToStop: num(values['tls-refusals-to-stop'], 'tls-refusals-to-stop'),
    reconnectBaseMs: dur(values['backoff-base']), reconnectCapMs: dur(values['backoff-cap']),
    rotateAfterMs: dur(values['rotate-after']), probeOldCertAfterMs: dur(values['probe-old-cert-after']),
    enrollConcurrency: num(values['enroll-concurrency'], 'enroll-concurrency'), connectConcurrency: num(values['connect-concurrency'], 'connect-concurrency'),
    connectRate: num(values['connect-rate'], 'connect-rate'), rampPerSecond: num(values.ramp, 'ramp'), seed: num(values.seed, 'seed'),
    durationMs: dur(values.duration), timeoutMs: dur(values.timeout), warmupMs: dur(values.warmup), holdMs: dur(values.hold),
    revokeCount: num(values.revoke, 'revoke'), ...(reason !== undefined && isRevocationReason(reason) ? { revokeReason: reason } : {}),
    cutBoundMs: dur(values['cut-bound']), maxLifetimeMs: dur(values['max-lifetime']),
    stormTrigger: oneOf<StormTrigger>(values['storm-trigger'], ['auto', 'restart', 'drop', 'client', 'kill-node'], 'storm-trigger'),
    maxRssSlopeMiBPerMin: num(values['max-rss-slope'], 'max-rss-slope'),
    brokerRestartCmd: values['broker-restart-cmd'], brokerDropUrl: values['broker-drop-url'],
    reportDir: values['report-dir'], reportName: values['report-name'], ...(values['no-progress'] ? { progress: false } : {}),
  };
  let spawnCluster: ParsedCli['spawnCluster'];
  if (values['spawn-cluster'] !== undefined) {
    const brokers = Number(values['spawn-cluster']);
    if (!Number.isInteger(brokers) || brokers < 1 || brokers > 16) throw new Error(`--spawn-cluster wants a broker count from 1 to 16, got "${values['spawn-cluster']}"`);
    if (values['spawn-server']) throw new Error('--spawn-server and --spawn-cluster are alternatives: pass one');
    const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL;
    if (!databaseUrl) throw new Error('--spawn-cluster needs a Postgres: pass --database-url (or set DATABASE_URL) naming an empty database');
    spawnCluster = { brokers, databaseUrl };
  }
  return { command: 'run', options, spawnServer: values['spawn-server'] === true, serverEnv, ...(spawnCluster ? { spawnCluster } : {}) };
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ParsedCli;
  try {
    parsed = parseCli(argv);
  } catch (err) {
    process.stderr.write(`enrolld-sim: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (parsed.command === 'list') {
    for (const name of SCENARIO_NAMES) {
      const preset = Object.entries(PRESETS[name]).map(([k, v]) => `${k}=${String(v)}`).join(' ');
      process.stdout.write(`${name.padEnd(20)} ${SCENARIOS[name].description}${preset ? `\n${''.padEnd(20)} preset: ${preset}` : ''}\n`);
    }
    return 0;
  }
  const opts = resolveOptions(parsed.options);
  try {
    const { report } = parsed.spawnCluster
      ? await runWithSpawnedCluster(opts, { ...parsed.spawnCluster, env: parsed.serverEnv })
      : parsed.spawnServer
        ? await runWithSpawnedServer(opts, { env: parsed.serverEnv })
        : await runScenario(opts);
    return report.passed ? 0 : 1;
  } catch (err) {
    process.stderr.write(`enrolld-sim: ${(err as Error).message}\n`);
    return 2;
  }
}

// run when executed directly (tsx device-sim/src/cli.ts, or the bin launcher), not when imported by tests
if (process.argv[1] && /cli\.(ts|js)$/.test(process.argv[1])) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
