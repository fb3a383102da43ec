// Runs `enrolld up` as a child process for the demo, the e2e test and `--spawn-server`: a temporary
// ENROLLD_HOME, fixed free ports (so a restart comes back on the same ones), readiness by /healthz and a TCP
// probe of the broker port, and an ordered stop (SIGTERM, then SIGKILL after a grace period).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { routes } from '@enrolld/protocol';
import { httpsCall } from './https-request.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServerProcessOptions {
  /** defaults to a fresh temp dir (mode 0755: embedded Postgres runs as another user and must traverse it) */
  home?: string;
  httpsPort?: number;
  mqttsPort?: number;
  /** extra environment, e.g. CERT_LIFETIME=60s */
  env?: Record<string, string>;
  /** where the server's stdout/stderr go; defaults to <home>/server.log */
  logFile?: string;
  startTimeoutMs?: number;
  /** wait for the broker port too (false while the broker is not part of `enrolld up`) */
  requireBroker?: boolean;
  /** a command line to run instead of `node --import tsx server/src/cli.ts up` */
  command?: string[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: '127.0.0.1', port });
    sock.setTimeout(1_000);
    sock.once('connect', () => (sock.destroy(), resolve(true)));
    sock.once('error', () => resolve(false));
    sock.once('timeout', () => (sock.destroy(), resolve(false)));
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ServerProcess {
  readonly home: string;
  httpsPort = 0;
  mqttsPort = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private output = '';
  private readonly ownsHome: boolean;

  constructor(private readonly opts: ServerProcessOptions = {}) {
    this.ownsHome = opts.home === undefined;
    this.home = opts.home ?? mkdtempSync(join(tmpdir(), 'enrolld-sim-home-'));
  }

  get apiUrl(): string {
    return `https://localhost:${this.httpsPort}`;
  }
  get brokerUrl(): string {
    return `mqtts://localhost:${this.mqttsPort}`;
  }
  get caFile(): string {
    return join(this.home, 'ca', 'root.pem');
  }
  get adminTokenFile(): string {
    return join(this.home, 'admin-token');
  }
  get logFile(): string {
    return this.opts.logFile ?? join(this.home, 'server.log');
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    await chmod(this.home, 0o755);
    this.httpsPort ||= this.opts.httpsPort ?? (await freePort());
    this.mqttsPort ||= this.opts.mqttsPort ?? (await freePort());
    const env: NodeJS.ProcessEnv = { ...process.env, ENROLLD_HOME: this.home, HTTPS_PORT: String(this.httpsPort), MQTTS_PORT: String(this.mqttsPort), LOG_LEVEL: 'info', ...this.opts.env };
    // the embedded default unless the caller asked for a database
    if (!this.opts.env?.DATABASE_URL) delete env.DATABASE_URL;
    const [cmd, ...args] = this.opts.command ?? [process.execPath, '--import', 'tsx', 'server/src/cli.ts', 'up'];
    const log = createWriteStream(this.logFile, { flags: 'a' });
    const child = spawn(cmd ?? process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.output = '';
    const keep = (chunk: Buffer): void => {
      log.write(chunk);
      // the tail is kept for error messages when it does not come up
      this.output = (this.output + chunk.toString('utf8')).slice(-4_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.once('exit', (code) => (log.end(), resolve(code))));
    await this.waitReady();
  }

  private async waitReady(): Promise<void> {
    const deadline = performance.now() + (this.opts.startTimeoutMs ?? 120_000);
    let exitCode: number | null | undefined;
    void this.exited?.then((c) => (exitCode = c ?? -1));
    let apiUp = false;
    while (performance.now() < deadline) {
      if (exitCode !== undefined) throw new Error(`enrolld exited with ${exitCode} before it was ready:\n${this.output}`);
      if (!apiUp && existsSync(this.caFile)) {
        try {
          const res = await httpsCall({ what: 'healthz', method: 'GET', url: new URL(routes.healthz, this.apiUrl), tls: { ca: readFileSync(this.caFile, 'utf8') }, timeoutMs: 2_000 });
          apiUp = res.status === 200;
        } catch {
          // not yet
        }
      }
      if (apiUp && (this.opts.requireBroker === false || (await tcpOpen(this.mqttsPort)))) return;
      await sleep(200);
    }
    throw new Error(`enrolld did not become ready (API ${apiUp ? 'up' : 'down'}, broker port ${this.mqttsPort}):\n${this.output}`);
  }

  async stop(graceMs = 20_000): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.child = undefined;
  }

  /** Stop, then remove the home if this object made it (keys, tokens and Postgres data are throwaway). */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownsHome && process.env.ENROLLD_SIM_KEEP_HOME !== '1') rmSync(this.home, { recursive: true, force: true });
  }

  /** Same home, same ports: devices come back to the same addresses. */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  readCa(): string {
    return readFileSync(this.caFile, 'utf8');
  }
}
