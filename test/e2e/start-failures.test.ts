import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ENROLLD_BIN, freePort } from '../support/processes.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `enrolld up` with only the given settings; each case fails before it serves, so none needs a stop. */
function up(env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [ENROLLD_BIN, 'up'],
      { env: { PATH: process.env.PATH ?? '', LISTEN_HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
    );
  });
}

describe('every failed start of `enrolld up` exits non-zero, says what to change, and creates nothing first', () => {
  let work: string;
  let busy: net.Server;
  let busyPort: number;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-start-'));
    busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => busy.close(resolve));
    await rm(work, { recursive: true, force: true });
  });

  it.each([
    ['HTTPS_PORT', 'MQTTS_PORT'],
    ['MQTTS_PORT', 'HTTPS_PORT'],
  ])('a busy %s names the port and the setting, and no home is created', async (setting, other) => {
    const home = path.join(work, `fresh-${setting}`);
    const run = await up({ ENROLLD_HOME: home, [setting]: String(busyPort), [other]: String(await freePort()) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`port ${busyPort} on 127.0.0.1 is in use; set ${setting} to another port`);
    expect(run.stderr).toContain('is not held by a running enrolld');
    expect(await readdir(work)).not.toContain(`fresh-${setting}`);
  });

  it('a busy port on a home that a live enrolld holds says which process holds it', async () => {
    const home = path.join(work, 'held');
    await mkdir(home);
    await writeFile(path.join(home, 'enrolld.lock'), `${process.pid}\n`); // this test process: alive
    const run = await up({ ENROLLD_HOME: home, HTTPS_PORT: String(busyPort), MQTTS_PORT: String(await freePort()) });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`another enrolld (pid ${process.pid}) holds ENROLLD_HOME=${home} (lock file ${path.join(home, 'enrolld.lock')})`);
    expect(await readdir(home)).toEqual(['enrolld.lock']);
  });

  it('a second `enrolld up` on a held home is refused before it touches the home', async () => {
    const home = path.join(work, 'held-free-ports');
    await mkdir(home);
    await writeFile(path.join(home, 'enrolld.lock'), `${process.pid}\n`);
    const run = await up({ ENROLLD_HOME: home, HTTPS_PORT: '0', MQTTS_PORT: '0' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`another enrolld (pid ${process.pid}) holds ENROLLD_HOME=${home}`);
    expect(await readdir(home)).toEqual(['enrolld.lock']);
  });

  it.each([
    ['under /proc', '/proc/self/enrolld', 'is under /proc, a kernel filesystem'],
    ['below a file', 'FILE/home', 'is not a directory'],
  ])('ENROLLD_HOME %s fails at once with a message naming ENROLLD_HOME', async (_case, where, message) => {
    const file = path.join(work, 'a-file');
    await writeFile(file, '');
    const home = where.replace('FILE', file);
    const run = await up({ ENROLLD_HOME: home, HTTPS_PORT: '0', MQTTS_PORT: '0' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`enrolld: ENROLLD_HOME=${home}`);
    expect(run.stderr).toContain(message);
  });

  it('an embedded Postgres that does not start shows its own log lines, exits 1 and releases the home', async () => {
    const home = path.join(work, 'broken-pg');
    await mkdir(path.join(home, 'pg'), { recursive: true });
    await writeFile(path.join(home, 'pg', 'PG_VERSION'), '99\n'); // looks initialised, has no configuration
    const run = await up({ ENROLLD_HOME: home, HTTPS_PORT: '0', MQTTS_PORT: '0' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`embedded Postgres did not start (data in ${path.join(home, 'pg')})`);
    expect(run.stderr).toMatch(/its last log lines:\n {4}postgres: could not access /); // the configuration, or (as root) the 0700 temp dir
    expect((await readdir(home)).sort()).toEqual(['pg', 'pg.secret']); // no CA, no admin token, no lock left
  });
});
