// The admin commands as an operator runs them (the compiled CLI against the real composition): the first owner made
// with the bearer token of ENROLLD_HOME, its files, then the CLI authenticated by that certificate, from --cert/--key
// and from ENROLLD_HOME/admin.pem and admin.key of a home that holds no admin token at all.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ENROLLD_BIN } from '../support/processes.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('enrolld admin …', () => {
  let server: TestServer;
  let work: string;
  /** A home for the CLI alone: the root CA, no admin token. */
  let cliHome: string;
  const alice = uniqueDeviceId('alice');
  const bob = uniqueDeviceId('bob');

  function enrolld(args: string[], home = server.home): Promise<Run> {
    return new Promise((resolve) => {
      execFile(process.execPath, [ENROLLD_BIN, ...args], { env: { PATH: process.env.PATH ?? '', ENROLLD_HOME: home, ENROLLD_URL: server.apiUrl, NO_COLOR: '1' } }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }
  const certFlags = (name: string) => ['--cert', path.join(work, 'certs', `${name}.pem`), '--key', path.join(work, 'certs', `${name}.key`)];

  beforeAll(async () => {
    server = await startTestServer();
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-admin-cli-'));
    cliHome = path.join(work, 'home');
    await mkdir(path.join(cliHome, 'ca'), { recursive: true });
    await copyFile(path.join(server.home, 'ca', 'root.pem'), path.join(cliHome, 'ca', 'root.pem'));
  });
  afterAll(async () => {
    await server?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('admin create with the bearer token writes <name>.key (0600) and <name>.pem (certificate, then the chain)', async () => {
    const run = await enrolld(['admin', 'create', alice, '--role', 'owner', '--out', path.join(work, 'certs')]);
    expect(run).toMatchObject({ code: 0, stderr: expect.stringContaining(`admin ${alice} (owner): certificate `) });
    const key = await stat(path.join(work, 'certs', `${alice}.key`));
    expect(key.mode & 0o777).toBe(0o600);
    const pem = await readFile(path.join(work, 'certs', `${alice}.pem`), 'utf8');
    const certificates = pem.match(/-----BEGIN CERTIFICATE-----/g) ?? [];
    expect(certificates.length).toBe(3); // leaf, issuing CA, root
    const leaf = new X509Certificate(pem);
    expect(leaf.subjectAltName).toBe(`URI:urn:enrolld:admin:${alice}`);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // extKeyUsage clientAuth only
  });

  it('--cert/--key authenticate the CLI as that admin, before or after the subcommand; one without the other is a usage error', async () => {
    expect(await enrolld([...certFlags(alice), 'admin', 'whoami'])).toMatchObject({ code: 0, stdout: `cert:${alice} owner (certificate)\n` });
    expect(await enrolld(['admin', 'whoami', ...certFlags(alice)], cliHome)).toMatchObject({ code: 0, stdout: `cert:${alice} owner (certificate)\n` });
    const half = await enrolld(['admin', 'whoami', '--cert', path.join(work, 'certs', `${alice}.pem`)]);
    expect(half).toMatchObject({ code: 2, stderr: expect.stringContaining('--cert and --key go together') });
    // Without them, the server's home gives the bearer token.
    expect(await enrolld(['admin', 'whoami'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^bearer:admin-[0-9a-f]{8} owner \(bearer\)\n$/) });
  });

  it('ENROLLD_HOME/admin.pem and admin.key are picked up by every admin command; a home with only one of them says so', async () => {
    const noCredential = await enrolld(['admin', 'whoami'], cliHome);
    expect(noCredential).toMatchObject({ code: 1, stderr: expect.stringContaining('admin.pem and admin.key') });
    await copyFile(path.join(work, 'certs', `${alice}.pem`), path.join(cliHome, 'admin.pem'));
    expect(await enrolld(['admin', 'whoami'], cliHome)).toMatchObject({ code: 1, stderr: expect.stringContaining(`found ${path.join(cliHome, 'admin.pem')} but not ${path.join(cliHome, 'admin.key')}`) });
    await copyFile(path.join(work, 'certs', `${alice}.key`), path.join(cliHome, 'admin.key'));
    expect(await enrolld(['admin', 'whoami'], cliHome)).toMatchObject({ code: 0, stdout: `cert:${alice} owner (certificate)\n` });

    // The owner by certificate makes a viewer, promotes it, lists both, and revokes it.
    expect((await enrolld(['admin', 'create', bob, '--role', 'viewer', '--out', path.join(work, 'certs')], cliHome)).code).toBe(0);
    expect(await enrolld([...certFlags(bob), 'token', 'create', '--device', uniqueDeviceId('by-bob')])).toMatchObject({ code: 1, stderr: expect.stringContaining('needs operator') });
    expect(await enrolld(['admin', 'role', bob, 'operator'], cliHome)).toMatchObject({ code: 0, stderr: `admin ${bob} is now operator\n` });
    expect((await enrolld([...certFlags(bob), 'token', 'create', '--device', uniqueDeviceId('by-bob')])).code).toBe(0);
    const listed = await enrolld(['admin', 'list', '--json'], cliHome);
    const admins = (JSON.parse(listed.stdout) as { admins: Array<{ name: string; role: string; status: string; createdBy: string }> }).admins;
    expect(admins.filter((a) => a.name === alice || a.name === bob).map((a) => [a.name, a.role, a.status, a.createdBy])).toEqual([
      [alice, 'owner', 'active', expect.stringMatching(/^bearer:admin-/)],
      [bob, 'operator', 'active', `cert:${alice}`],
    ]);
    const revoked = await enrolld(['admin', 'revoke', bob], cliHome);
    expect(revoked).toMatchObject({ code: 0, stdout: expect.stringMatching(/^[0-9a-f]+\n$/), stderr: expect.stringContaining('reason cessationOfOperation') });
    expect(await enrolld([...certFlags(bob), 'admin', 'whoami'])).toMatchObject({ code: 1, stderr: expect.stringContaining('is revoked') });
  });
});
