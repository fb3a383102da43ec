// The checks a server role runs before it creates anything: ENROLLD_HOME usable, ports free, the home not held by
// another `enrolld up`. They are cheap and name what to change, so a failed start leaves no half-made CA, admin token
// or database behind, and exits non-zero (cli/program.ts).
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, realpath, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

/** A start that cannot proceed: the message names the setting to change. */
export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartError';
  }
}

/** Kernel filesystems: writable-looking paths there fail late (EACCES deep in Postgres' initdb) or hang. */
const VIRTUAL_FILESYSTEMS = ['/proc', '/sys', '/dev'];

/** The nearest ancestor of `dir` (or dir itself) that exists. */
async function nearestExisting(dir: string): Promise<string> {
  for (let current = dir; ; current = path.dirname(current)) {
    try {
      await stat(current);
      return current;
    } catch {
      if (path.dirname(current) === current) return current;
    }
  }
}

/** ENROLLD_HOME must be a directory we can write, or creatable in one, and not on a kernel filesystem. Creates nothing. */
export async function checkHome(home: string): Promise<void> {
  const existing = await realpath(await nearestExisting(home));
  const virtual = VIRTUAL_FILESYSTEMS.find((root) => existing === root || existing.startsWith(root + '/'));
  if (virtual) throw new StartError(`ENROLLD_HOME=${home} is under ${virtual}, a kernel filesystem; point ENROLLD_HOME at a directory on disk (default ./.enrolld)`);
  const info = await stat(existing);
  if (!info.isDirectory()) throw new StartError(`ENROLLD_HOME=${home}: ${existing} is not a directory; point ENROLLD_HOME at a directory`);
  try {
    await access(existing, constants.W_OK | constants.X_OK);
  } catch {
    const what = existing === path.resolve(home) ? 'is not writable' : `cannot be created (${existing} is not writable)`;
    throw new StartError(`ENROLLD_HOME=${home} ${what} by this user (uid ${process.getuid?.() ?? '?'}); fix its permissions or point ENROLLD_HOME elsewhere`);
  }
}

export interface PortToCheck {
  port: number;
  /** The setting that moves it, e.g. HTTPS_PORT. */
  setting: string;
  /** Where it listens, when not LISTEN_HOST (BROKER_HTTP_HOST). */
  host?: string | undefined;
}

function probe(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** Each fixed port must be free on its host, LISTEN_HOST unless it names one (0 = any free port, nothing to check). */
export async function checkPorts(host: string, ports: PortToCheck[], home: string): Promise<void> {
  for (const { port, setting, host: own } of ports.filter((p) => p.port !== 0)) {
    const error = await probe(own ?? host, port);
    if (error) throw portError(own ?? host, port, setting, error, await homeHolderNote(home));
  }
}

/** The message for a port that cannot be listened on, at the check or (a race) at the real listen. */
export function portError(host: string, port: number, setting: string, error: NodeJS.ErrnoException, holderNote: string): StartError {
  const why = error.code === 'EADDRINUSE' ? 'is in use' : error.code === 'EACCES' ? 'needs privileges this user lacks' : `cannot be listened on (${error.code ?? error.message})`;
  return new StartError(`port ${port} on ${host} ${why}; set ${setting} to another port (0 picks a free one). ${holderNote}`);
}

/** Who holds the home, for a port message: a live enrolld, or nobody (so the port is another program's or another home's). */
export async function homeHolderNote(home: string): Promise<string> {
  return (await homeHolder(home)) ?? `ENROLLD_HOME=${home} is not held by a running enrolld, so another program (or an enrolld on another home) has the port`;
}

const lockFile = (home: string) => path.join(home, 'enrolld.lock');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** "another enrolld (pid 123) holds ENROLLD_HOME=… (lock file …)", or undefined when no live process holds it. */
async function homeHolder(home: string): Promise<string | undefined> {
  const file = lockFile(home);
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !alive(pid)) return undefined;
  return `another enrolld (pid ${pid}) holds ENROLLD_HOME=${home} (lock file ${file})`;
}

/**
 * Creates ENROLLD_HOME (0711, see pki-home.ts) and takes its lock: one `enrolld up` per home, since its embedded
 * Postgres and CA live there. A lock left by a process that is gone is taken over. Returns the release.
 */
export async function lockHome(home: string): Promise<() => Promise<void>> {
  const holder = await homeHolder(home);
  if (holder) throw new StartError(`${holder}; stop it, or give this one its own ENROLLD_HOME`);
  await mkdir(home, { recursive: true, mode: 0o711 });
  const file = lockFile(home);
  await rm(file, { force: true }); // stale: its pid is gone
  const handle = await open(file, 'wx', 0o644).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
    throw new StartError(`${(await homeHolder(home)) ?? `another enrolld is starting on ENROLLD_HOME=${home}`}; stop it, or give this one its own ENROLLD_HOME`);
  });
  try {
    await handle.writeFile(`${process.pid}\n`);
  } finally {
    await handle.close();
  }
  return () => rm(file, { force: true });
}
