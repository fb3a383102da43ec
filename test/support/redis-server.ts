// A redis-server owned by one test: its own port and data directory, killed and started again by the test (never the
// shared Redis every other test uses). With `appendfsync always`, what was written before a SIGKILL is there after the
// restart, as with a Redis that crashed and came back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';

/**
 * A free port below the kernel's ephemeral range (32768+ on Linux): a client that keeps reconnecting to a port in that
 * range while nothing listens may be handed that very port as its own and connect to itself (TCP simultaneous open),
 * which would hold the port and fool the client into a live connection.
 */
export async function freeLowPort(): Promise<number> {
  const first = 21379 + Math.floor(Math.random() * 500);
  for (let port = first; port < 21999; port++) {
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 21379-21999 for a test redis-server');
}

export interface TestRedisServer {
  port: number;
  url: string;
  /** SIGKILL; resolves when the process has exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (nothing when it runs); resolves when it accepts connections. */
  restart(): Promise<void>;
  /** Stops it and removes its data directory. */
  stop(): Promise<void>;
}

export async function startTestRedisServer(): Promise<TestRedisServer> {
  const port = await freeLowPort();
  const dir = await mkdtemp(path.join(tmpdir(), 'enrolld-redis-'));
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          proc.stdout!.off('data', onData);
          resolve();
        }
      };
      proc.stdout!.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)));
    });
    child = proc;
    // Keep draining, so a full pipe never blocks it.
    proc.stdout!.resume();
    proc.stderr!.resume();
  }

  async function kill(): Promise<void> {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    async restart() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      await start();
    },
    async stop() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
