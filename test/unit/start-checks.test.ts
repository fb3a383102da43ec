import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { checkHome, checkPorts, lockHome } from '../../server/src/cli/start-checks.js';

/** The pid of a process that has exited: no process holds it now. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('the ENROLLD_HOME lock of `enrolld up`', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-lock-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('creates the home, writes its pid, and the release removes the lock', async () => {
    const home = path.join(work, 'fresh');
    const release = await lockHome(home);
    expect((await readFile(path.join(home, 'enrolld.lock'), 'utf8')).trim()).toBe(String(process.pid));
    await release();
    expect(await readdir(home)).toEqual([]);
  });

  it('takes over a lock whose process is gone', async () => {
    const home = path.join(work, 'stale');
    await lockHome(home).then((release) => release());
    await writeFile(path.join(home, 'enrolld.lock'), `${await deadPid()}\n`);
    const release = await lockHome(home);
    expect((await readFile(path.join(home, 'enrolld.lock'), 'utf8')).trim()).toBe(String(process.pid));
    await release();
  });

  it('refuses a home whose lock names a live process, naming it', async () => {
    const home = path.join(work, 'held');
    const holder = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
    try {
      await lockHome(home).then((release) => release());
      await writeFile(path.join(home, 'enrolld.lock'), `${holder.pid}\n`);
      await expect(lockHome(home)).rejects.toThrow(`another enrolld (pid ${holder.pid}) holds ENROLLD_HOME=${home}`);
      expect((await readFile(path.join(home, 'enrolld.lock'), 'utf8')).trim()).toBe(String(holder.pid)); // untouched
    } finally {
      holder.kill();
    }
  });

  it('checkHome accepts a missing home below a writable directory and creates nothing', async () => {
    await checkHome(path.join(work, 'not', 'yet'));
    expect(await readdir(work)).not.toContain('not');
  });
});

describe('the port check', () => {
  it('probes a port on its own host when it names one (BROKER_HTTP_HOST), and names its setting when it is busy', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const busy = (holder.address() as net.AddressInfo).port;
    const home = await mkdtemp(path.join(tmpdir(), 'enrolld-ports-'));
    try {
      // LISTEN_HOST here is an address this machine does not have (TEST-NET-1): only the port's own host is probed.
      await expect(checkPorts('192.0.2.1', [{ port: busy, setting: 'BROKER_HTTP_PORT', host: '127.0.0.1' }], home)).rejects.toThrow(
        `port ${busy} on 127.0.0.1 is in use; set BROKER_HTTP_PORT to another port (0 picks a free one)`,
      );
      await expect(checkPorts('192.0.2.1', [{ port: busy, setting: 'MQTTS_PORT' }], home)).rejects.toThrow(`port ${busy} on 192.0.2.1 cannot be listened on (EADDRNOTAVAIL)`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
      await rm(home, { recursive: true, force: true });
    }
  });
});
