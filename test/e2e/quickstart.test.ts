import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, REPO_ROOT, spawnEnrolld, type EnrolldProcess } from '../support/processes.js';

const run = promisify(execFile);

/** The README's quick-start block, verbatim: if the README drifts from the product, this test fails. */
async function readmeQuickStart(): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```bash\n([\s\S]*?)```/.exec(section);
  if (!block?.[1]) throw new Error('README has no quick-start bash block');
  return block[1];
}

describe('README quick start: `enrolld up` on embedded Postgres, then openssl + curl', () => {
  let enrolld: EnrolldProcess;
  let home: string;
  let work: string;
  let port: number;

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-home-'));
    // Inside the repo, as a user running the README from their clone would be: `npx enrolld` resolves there.
    work = await mkdtemp(path.join(REPO_ROOT, '.tmp-quickstart-'));
    port = await freePort();
    // No DATABASE_URL: the embedded Postgres is part of what is under test.
    enrolld = await spawnEnrolld({ ENROLLD_HOME: home, HTTPS_PORT: String(port), MQTTS_PORT: String(await freePort()), LISTEN_HOST: '127.0.0.1' });
  });
  afterAll(async () => {
    const code = await enrolld?.stop();
    expect(code).toBe(0); // clean shutdown on SIGTERM
    await rm(home, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('prints where the root CA and admin token are, with 0600 keys', async () => {
    expect(enrolld.ready).toMatchObject({ rootCa: path.join(home, 'ca', 'root.pem'), adminTokenFile: path.join(home, 'admin-token'), embeddedPostgres: true });
    const { stdout } = await run('stat', ['-c', '%a %n', path.join(home, 'admin-token'), path.join(home, 'ca', 'issuing.key'), path.join(home, 'ca', 'root.key'), path.join(home, 'tls', 'server.key')]);
    for (const line of stdout.trim().split('\n')) expect(line).toMatch(/^600 /);
  });

  it('enrolls a device exactly as the README says and the certificate verifies', async () => {
    const script = (await readmeQuickStart()).replaceAll('localhost:8443', `localhost:${port}`);
    const { stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: work,
      env: { ...process.env, ENROLLD_HOME: home, HTTPS_PORT: String(port), ENROLLD_URL: `https://localhost:${port}` },
    });
    expect(stdout).toContain('sensor-0001.pem: OK');
    expect(stderr).not.toMatch(/error/i);
    const cert = await readFile(path.join(work, 'sensor-0001.pem'), 'utf8');
    expect(cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const { stdout: text } = await run('openssl', ['x509', '-noout', '-subject', '-ext', 'subjectAltName,extendedKeyUsage', '-in', path.join(work, 'sensor-0001.pem')]);
    expect(text).toContain('CN = sensor-0001');
    expect(text).toContain('URI:urn:enrolld:device:sensor-0001');
    expect(text).toContain('TLS Web Client Authentication');
  });
});
