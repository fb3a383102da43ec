import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TSX_CLI = fileURLToPath(new URL('../../node_modules/tsx/dist/cli.mjs', import.meta.url));
/** The `enrolld` command as users run it: the compiled CLI (npm test compiles it first). */
export const ENROLLD_BIN = fileURLToPath(new URL('../../server/bin/enrolld.js', import.meta.url));

/** The port a child process announces with a `{"port":N}` line on its stdout; rejects if it exits first. */
export function announcedPort(child: ChildProcess, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before announcing its port`)));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface EnrolldProcess {
  child: ChildProcess;
  /** The `enrolld ready` log record. */
  ready: Record<string, unknown>;
  output(): string;
  /** SIGTERM, and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `enrolld <args>` (default `up`) as a real process and waits for its `enrolld ready` log line. With
 * `terminal: true` it leads a process group of its own, as a shell job does, and stop() signals the whole group, as
 * Ctrl-C in a terminal does (the embedded Postgres included).
 */
export async function spawnEnrolld(env: Record<string, string>, args: string[] = ['up'], timeoutMs = 90_000, options: { terminal?: boolean } = {}): Promise<EnrolldProcess> {
  const child = spawn(process.execPath, [ENROLLD_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.terminal === true,
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL'); // never leave a half-started server behind
      reject(new Error(`enrolld did not become ready in ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('"enrolld ready"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
        return;
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`enrolld exited (${code}) before it was ready:\n${out}`));
    });
  });
  return {
    child,
    ready,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      if (options.terminal) process.kill(-child.pid!, signal);
      else child.kill(signal);
      return exited;
    },
  };
}

export interface BrokerProcess {
  child: ChildProcess;
  /** Its health and metrics port (BROKER_HTTP_PORT; any free one unless the test set it). */
  httpPort: number;
  output(): string;
  stop(): Promise<number | null>;
}

/**
 * Runs `enrolld broker` and waits until it listens (its HTTP port listens before MQTT). stop() sends SIGTERM; kill it
 * with `child.kill('SIGKILL')`.
 */
export async function spawnBroker(env: Record<string, string>, timeoutMs = 60_000): Promise<BrokerProcess> {
  const child = spawn(process.execPath, [ENROLLD_BIN, 'broker'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', LOG_LEVEL: 'info', BROKER_HTTP_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker not listening in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"MQTT broker listening (mTLS)"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited (${code}):\n${out}`));
    });
  });
  const httpLine = out.split('\n').find((line) => line.includes('"broker HTTP listening'));
  return {
    child,
    httpPort: (JSON.parse(httpLine!) as { port: number }).port,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      return exited;
    },
  };
}
