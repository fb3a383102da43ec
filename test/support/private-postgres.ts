// A Postgres cluster owned by one test, so the test may freeze (SIGSTOP) or kill it without touching the shared server:
// the embedded Postgres of `enrolld up` (db/src/embedded.ts) in a temp home, on a free loopback port.
import { readFile, readdir, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@enrolld/db';

export interface PrivatePostgres {
  url: string;
  /** SIGSTOP on the postmaster and every backend: connections open, nothing answers. */
  freeze(): Promise<number[]>;
  /** SIGCONT on what freeze() stopped. */
  thaw(): void;
  stop(): Promise<void>;
}

/** The postmaster's pid, from the first line of postmaster.pid in the data directory. */
export async function postmasterPid(dataDir: string): Promise<number> {
  const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${dataDir}`);
  return pid;
}

/** The pids whose parent is `parent` (Linux /proc). */
export async function childPids(parent: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …: comm may hold spaces, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === parent) children.push(Number(entry));
  }
  return children;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const home = await mkdtemp(path.join(tmpdir(), 'enrolld-pg-'));
  let handle: EmbeddedPostgresHandle;
  try {
    handle = await startEmbeddedPostgres({ home });
  } catch (error) {
    await rm(home, { recursive: true, force: true });
    throw error;
  }
  let stopped: number[] = [];
  const thaw = () => {
    for (const pid of stopped) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone already
      }
    }
    stopped = [];
  };
  return {
    url: handle.url,
    async freeze() {
      const postmaster = await postmasterPid(path.join(home, 'pg'));
      // The postmaster first, so it forks no new backend while the others are stopped.
      process.kill(postmaster, 'SIGSTOP');
      stopped = [postmaster];
      for (const pid of await childPids(postmaster)) {
        process.kill(pid, 'SIGSTOP');
        stopped.push(pid);
      }
      return [...stopped];
    },
    thaw,
    async stop() {
      thaw();
      await handle.stop();
      await rm(home, { recursive: true, force: true });
    },
  };
}
