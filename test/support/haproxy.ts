// HAProxy on the shipped deploy/haproxy.cfg (the same file docker-compose mounts), its addresses given by the LB_*
// environment variables the file reads, plus a one-line config that adds a stats socket: a test waits on HAProxy's own
// view of each server (`show servers state`) instead of guessing how long its checks take.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './processes.js';
import { waitFor } from './wait-for.js';

export interface HaproxyProcess {
  child: ChildProcess;
  output(): string;
  /** Each server of `backend` → its operational state (srv_op_state: 0 down, 2 up). */
  serverStates(backend: string): Promise<Map<string, number>>;
  /** Resolves when HAProxy has `server` of `backend` in `state` ('up' or 'down'). */
  waitForServer(backend: string, server: string, state: 'up' | 'down', timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function spawnHaproxy(lb: Record<string, string>): Promise<HaproxyProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enrolld-haproxy-'));
  const socket = path.join(dir, 'stats.sock');
  const extra = path.join(dir, 'stats.cfg');
  await writeFile(extra, `global\n  stats socket ${socket}\n`);
  // -db: foreground, log on stderr. LB_MAXCONN: the file's 200000 needs more open files than a test machine allows.
  const child = spawn('haproxy', ['-db', '-f', path.join(REPO_ROOT, 'deploy', 'haproxy.cfg'), '-f', extra], {
    env: { PATH: process.env.PATH ?? '', LB_MAXCONN: '1024', ...lb },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const ask = (command: string) =>
    new Promise<string>((resolve, reject) => {
      let answer = '';
      const s = net.connect(socket);
      s.once('error', reject);
      s.on('data', (c: Buffer) => (answer += c.toString()));
      s.once('end', () => resolve(answer));
      s.end(`${command}\n`);
    });

  async function serverStates(backend: string): Promise<Map<string, number>> {
    const states = new Map<string, number>();
    // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state ...
    for (const line of (await ask(`show servers state ${backend}`)).split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols[1] === backend) states.set(cols[3]!, Number(cols[5]));
    }
    return states;
  }

  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}):\n${out}`);
    return ask('show info').then(() => true, () => false);
  }, 10_000, 'haproxy stats socket', 50);

  return {
    child,
    output: () => out,
    serverStates,
    waitForServer: (backend, server, state, timeoutMs = 30_000) =>
      waitFor(async () => (await serverStates(backend)).get(server) === (state === 'up' ? 2 : 0), timeoutMs, `haproxy ${backend}/${server} ${state}`, 100),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
