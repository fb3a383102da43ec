// Runs the local cluster form (`server/scripts/cluster.mjs`, what `npm run cluster` runs) as a child process for
// `--spawn-cluster N`, the e2e test and `npm run bench:cluster`: one API and N `enrolld broker` processes of one Redis
// cluster over an external Postgres, a temporary ENROLLD_HOME and free ports. The script reports each process's pid once
// everything is ready; killBroker() SIGKILLs one of them (CLUSTER_ON_EXIT=keep, so the rest carry on).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, freePort } from './server-process.js';

export interface ClusterProcessOptions {
  brokers: number;
  /** Postgres for every process: an empty database, or one this ENROLLD_HOME used before */
  databaseUrl: string;
  redisUrl?: string;
  /** defaults to a fresh temp dir, removed by dispose() */
  home?: string;
  /** extra environment for every process, e.g. BROKER_HEARTBEAT_INTERVAL=1s */
  env?: Record<string, string>;
  /** every line of every process, prefixed with its name; defaults to <home>/cluster.log */
  logFile?: string;
  startTimeoutMs?: number;
}

export interface ClusterMember {
  name: string;
  role: 'api' | 'broker';
  port: number;
  pid: number;
}

export class ClusterProcess {
  readonly home: string;
  /** Redis prefix of this cluster's channels and keys: its own, so runs never share sessions */
  readonly prefix = `enrolld-sim-${randomBytes(4).toString('hex')}:`;
  members: ClusterMember[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private output = '';
  private readonly ownsHome: boolean;
  private readonly exitWaiters = new Map<string, () => void>();

  constructor(private readonly opts: ClusterProcessOptions) {
    if (!Number.isInteger(opts.brokers) || opts.brokers < 1) throw new Error(`a cluster needs at least 1 broker, got ${opts.brokers}`);
    this.ownsHome = opts.home === undefined;
    this.home = opts.home ?? mkdtempSync(join(tmpdir(), 'enrolld-sim-cluster-'));
  }

  get logFile(): string {
    return this.opts.logFile ?? join(this.home, 'cluster.log');
  }
  get apiUrl(): string {
    return `https://localhost:${this.members.find((m) => m.role === 'api')?.port ?? 0}`;
  }
  get brokers(): ClusterMember[] {
    return this.members.filter((m) => m.role === 'broker');
  }
  get brokerUrls(): string[] {
    return this.brokers.map((b) => `mqtts://localhost:${b.port}`);
  }
  get caFile(): string {
    return join(this.home, 'ca', 'root.pem');
  }
  get adminTokenFile(): string {
    return join(this.home, 'admin-token');
  }
  /** the cluster script itself (its children are its business) */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    const https = await freePort();
    const mqtts: number[] = [];
    while (mqtts.length < this.opts.brokers) {
      const p = await freePort();
      if (p !== https && !mqtts.includes(p)) mqtts.push(p);
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env, LOG_LEVEL: 'info', ...this.opts.env,
      DATABASE_URL: this.opts.databaseUrl, ENROLLD_HOME: this.home, CLUSTER_HTTPS_PORTS: String(https), CLUSTER_MQTTS_PORTS: mqtts.join(','),
      // no HAProxy front: its ports are fixed, and devices here are spread over the brokers by the simulator itself
      CLUSTER_ON_EXIT: 'keep', CLUSTER_HAPROXY: 'off', BROKER_CLUSTER_PREFIX: this.prefix,
      ...(this.opts.redisUrl ? { REDIS_URL: this.opts.redisUrl } : {}),
    };
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [join(REPO_ROOT, 'server', 'scripts', 'cluster.mjs')], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => (log.end(), resolve())));
    let buffer = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the cluster did not become ready in ${(this.opts.startTimeoutMs ?? 120_000) / 1000}s:\n${this.output}`)), this.opts.startTimeoutMs ?? 120_000);
      const onData = (chunk: Buffer): void => {
        log.write(chunk);
        this.output = (this.output + chunk.toString('utf8')).slice(-4_000);
        buffer += chunk.toString('utf8');
        for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 1);
          if (line.startsWith('cluster ready ')) {
            clearTimeout(timer);
            this.members = (JSON.parse(line.slice('cluster ready '.length)) as { processes: ClusterMember[] }).processes;
            resolve();
          }
          const exit = /^(\S+)\s+exited \(/.exec(line);
          if (exit) this.exitWaiters.get(exit[1]!)?.();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      void this.exited?.then(() => (clearTimeout(timer), reject(new Error(`the cluster script exited before it was ready:\n${this.output}`))));
    });
    await ready;
  }

  /** SIGKILL broker `index` (0-based) and wait until the cluster script saw it exit. Returns its URL. */
  async killBroker(index: number): Promise<string> {
    const broker = this.brokers[index];
    if (!broker) throw new Error(`no broker #${index + 1} in this cluster`);
    const gone = new Promise<void>((resolve) => this.exitWaiters.set(broker.name, resolve));
    process.kill(broker.pid, 'SIGKILL');
    await gone;
    this.members = this.members.filter((m) => m !== broker);
    return `mqtts://localhost:${broker.port}`;
  }

  /** SIGTERM to the script: each process gets its orderly stop. */
  async stop(graceMs = 30_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      // the script did not finish: end its children by pid, then the script
      for (const m of this.members) {
        try {
          process.kill(m.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      child.kill('SIGKILL');
    }, graceMs);
    await this.exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsHome && process.env.ENROLLD_SIM_KEEP_HOME !== '1') rmSync(this.home, { recursive: true, force: true });
  }
}
