import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { isCanonicalSerial } from '@enrolld/protocol';
import { waitFor } from '../support/wait-for.js';
import { freePort, REPO_ROOT, spawnEnrolld, type EnrolldProcess } from '../support/processes.js';

const run = promisify(execFile);

/** The first bash block of a README section whose text (from the heading on) contains `marker`, verbatim. */
async function readmeBlock(heading: string, marker: string): Promise<string> {
  const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf(heading));
  const block = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes(marker));
  if (!block) throw new Error(`README has no bash block with ${marker} after ${heading}`);
  return block;
}
/** The README's quick-start block: if the README drifts from the product, this test fails. */
const readmeQuickStart = () => readmeBlock('## Quick start', 'enrolld token create');

describe('README quick start: `enrolld up` on embedded Postgres, then openssl + curl', () => {
  let enrolld: EnrolldProcess;
  let home: string;
  let work: string;
  let port: number;
  let mqttsPort: number;

  let gitStatusBefore: string;
  const gitStatus = async () => (await run('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: REPO_ROOT })).stdout;

  beforeAll(async () => {
    gitStatusBefore = await gitStatus();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-home-'));
    // The block makes its scratch directory with mktemp, which honours TMPDIR: here, so the test can look inside.
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-quickstart-'));
    port = await freePort();
    mqttsPort = await freePort();
    // No DATABASE_URL: the embedded Postgres is part of what is under test.
    enrolld = await spawnEnrolld({ ENROLLD_HOME: home, HTTPS_PORT: String(port), MQTTS_PORT: String(mqttsPort), LISTEN_HOST: '127.0.0.1' });
  });
  afterAll(async () => {
    const code = await enrolld?.stop();
    expect(code).toBe(0); // clean shutdown on SIGTERM
    // The last log record says it stopped, after the shutdown began; no warning about lost feeds in between.
    const records = enrolld.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string });
    const shutdown = records.findIndex((r) => r.msg === 'shutting down');
    expect(shutdown).toBeGreaterThan(0);
    expect(records.at(-1)).toMatchObject({ msg: 'stopped', signal: 'SIGTERM' });
    expect(records.slice(shutdown).filter((r) => r.level >= 40)).toEqual([]);
    await rm(home, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('prints a ready banner with both URLs, the trust anchor, the admin token and the DATABASE_URL a second process needs', async () => {
    await waitFor(() => enrolld.output().includes('Ctrl-C stops it.'), 5000, 'the ready banner (printed right after the ready log record)');
    const banner = enrolld.output();
    expect(banner).toContain(`API          https://localhost:${port}`);
    expect(banner).toContain(`MQTT         mqtts://localhost:${mqttsPort}`);
    expect(banner).toContain(`root CA      ${path.join(home, 'ca', 'root.pem')}`);
    expect(banner).toContain(`admin token  ${path.join(home, 'admin-token')}`);
    const line = /DATABASE_URL="(postgres:\/\/postgres:\$\(cat ([^)]+)\)@127\.0\.0\.1:\d+\/enrolld)"/.exec(banner);
    expect(line?.[2]).toBe(path.join(home, 'pg.secret'));
    // The line works as printed, and it never carries the password itself.
    const secret = (await readFile(path.join(home, 'pg.secret'), 'utf8')).trim();
    expect(banner).not.toContain(secret);
    const { stdout: url } = await run('bash', ['-c', `DATABASE_URL="${line![1]}"; echo -n "$DATABASE_URL"`]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('SELECT count(*)::int AS n FROM schema_migrations')).rows[0].n).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });

  it('the container healthcheck script says healthy', async () => {
    const { stdout } = await run(process.execPath, [path.join(REPO_ROOT, 'server/scripts/healthcheck.mjs')], { env: { ...process.env, ENROLLD_HOME: home, HTTPS_PORT: String(port) } });
    expect(stdout).toBe('readyz 200\n');
  });

  it('prints where the root CA and admin token are, with 0600 keys', async () => {
    expect(enrolld.ready).toMatchObject({ rootCa: path.join(home, 'ca', 'root.pem'), adminTokenFile: path.join(home, 'admin-token'), embeddedPostgres: true });
    const { stdout } = await run('stat', ['-c', '%a %n', path.join(home, 'admin-token'), path.join(home, 'ca', 'issuing.key'), path.join(home, 'ca', 'root.key'), path.join(home, 'tls', 'server.key')]);
    for (const line of stdout.trim().split('\n')) expect(line).toMatch(/^600 /);
  });

  it('enrolls a device exactly as the README says, from the checkout, leaving `git status` as it was', async () => {
    const script = (await readmeQuickStart()).replaceAll('localhost:8443', `localhost:${port}`);
    const { stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: REPO_ROOT,
      // A PATH without the checkout's bins: the block must put its own `enrolld` first.
      env: { PATH: `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin:/usr/sbin`, HOME: process.env.HOME ?? '/root', TMPDIR: work, ENROLLD_HOME: home, HTTPS_PORT: String(port), ENROLLD_URL: `https://localhost:${port}` },
    });
    expect(stdout).toContain('sensor-0001.pem: OK');
    expect(stderr).not.toMatch(/error/i);
    // Keys, CSR, certificate and JSON all went to the scratch directory, not the checkout (where .gitignore would hide some).
    expect(await gitStatus()).toBe(gitStatusBefore);
    for (const file of ['sensor-0001.key', 'sensor-0001.csr', 'sensor-0001.json', 'sensor-0001.pem', 'chain.pem']) expect(existsSync(path.join(REPO_ROOT, file))).toBe(false);
    const [scratch] = await readdir(work);
    const pem = path.join(work, scratch!, 'sensor-0001.pem');
    const cert = await readFile(pem, 'utf8');
    expect(cert).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const { stdout: text } = await run('openssl', ['x509', '-noout', '-subject', '-ext', 'subjectAltName,extendedKeyUsage', '-in', pem]);
    expect(text).toContain('CN = sensor-0001');
    expect(text).toContain('URI:urn:enrolld:device:sensor-0001');
    expect(text).toContain('TLS Web Client Authentication');
  });

  it('renews that device over MQTT with the README\'s mosquitto_rr block, in the same scratch directory', async () => {
    const [scratch] = await readdir(work);
    const script = (await readmeBlock('## Rotation', 'mosquitto_rr')).replaceAll('-p 8883', `-p ${mqttsPort}`);
    const { stdout, stderr } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: path.join(work, scratch!),
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ENROLLD_HOME: home, DEVICE: 'sensor-0001' },
    });
    expect(stdout).toContain('sensor-0001-next.pem: OK');
    expect(stderr).not.toMatch(/error/i);
    const answer = JSON.parse(await readFile(path.join(work, scratch!, 'sensor-0001-next.json'), 'utf8')) as { deviceId: string; serial: string };
    expect(answer.deviceId).toBe('sensor-0001');
    const first = new X509Certificate(await readFile(path.join(work, scratch!, 'sensor-0001.pem')));
    const next = new X509Certificate(await readFile(path.join(work, scratch!, 'sensor-0001-next.pem')));
    expect(next.serialNumber.toLowerCase()).not.toBe(first.serialNumber.toLowerCase());
    expect(next.publicKey.equals(first.publicKey)).toBe(false);
  });

  it('logs every serial in the one form the API and CLI use, so grep finds a serial the API answered', async () => {
    const [scratch] = await readdir(work);
    const enrolled = JSON.parse(await readFile(path.join(work, scratch!, 'sensor-0001.json'), 'utf8')) as { serial: string };
    const serials: string[] = [];
    const collect = (value: unknown, key = ''): void => {
      if (typeof value === 'string' && /serial/i.test(key)) serials.push(value);
      else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) collect(v, k);
    };
    for (const line of enrolld.output().split('\n').filter((l) => l.startsWith('{'))) collect(JSON.parse(line));
    expect(serials).toContain(enrolled.serial); // the enrollment is logged with the serial the API answered
    expect(serials.filter((serial) => !isCanonicalSerial(serial))).toEqual([]);
  });
});
