import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { deviceTokensResponseSchema, routes } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { ENROLLD_BIN } from '../support/processes.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('tokens for ids that already have certificates: --replace, --after-compromise, token show (CLI against a real server)', () => {
  let server: TestServer;
  let work: string;
  const prefix = `${uniqueDeviceId('line')}-`;
  const enrolled = `${prefix}0002`;

  function enrolld(args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [ENROLLD_BIN, ...args],
        { cwd: work, env: { PATH: process.env.PATH ?? '', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl } },
        (error, out, err) => resolve({ code: error ? Number(error.code) : 0, stdout: out, stderr: err }),
      );
    });
  }

  async function enroll(token: string, deviceId: string) {
    return postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
  }

  beforeAll(async () => {
    server = await startTestServer();
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-tokens-'));
    const enrolledToken = await server.createToken(enrolled);
    expect((await enroll(enrolledToken, enrolled)).status).toBe(201);
  });
  afterAll(async () => {
    await server.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('a batch that includes an enrolled id is refused without --replace, and nothing of it is created', async () => {
    const refused = await enrolld(['token', 'create', '--prefix', prefix, '--count', '3', '--out', 'refused.csv']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`1 device(s) already have a live certificate (${enrolled})`);
    expect(refused.stderr).toContain('--replace');
    const { rows } = await server.db.pool.query('SELECT count(*)::int AS n FROM bootstrap_tokens WHERE device_id LIKE $1', [`${prefix}%`]);
    expect(rows[0].n).toBe(1); // only the token the device enrolled with
    await expect(stat(path.join(work, 'refused.csv'))).rejects.toThrow(/ENOENT/);
  });

  it('with --replace the CSV says which ids are new and which are re-issued, and --out writes it 0600', async () => {
    const run = await enrolld(['token', 'create', '--prefix', prefix, '--count', '3', '--replace', '--out', 'tokens.csv']);
    expect(run).toMatchObject({ code: 0, stdout: '' });
    expect(run.stderr).toContain('2 new, 1 re-issued');
    const csv = (await readFile(path.join(work, 'tokens.csv'), 'utf8')).trim().split('\n');
    expect(csv[0]).toBe('deviceId,token,expiresAt,issuedAs,batchId');
    expect(csv.slice(1).map((line) => [line.split(',')[0], line.split(',')[3]])).toEqual([
      [`${prefix}0001`, 'new'],
      [enrolled, 're-issued'],
      [`${prefix}0003`, 'new'],
    ]);
    expect((await stat(path.join(work, 'tokens.csv'))).mode & 0o777).toBe(0o600);
    const again = await enrolld(['token', 'create', '--prefix', prefix, '--count', '3', '--replace', '--out', 'tokens.csv']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('tokens.csv exists');
  });

  it('a file that stdout is redirected to (`> tokens.csv`) is made 0600', async () => {
    const file = path.join(work, 'redirected.txt');
    const handle = await open(file, 'w', 0o644);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    try {
      const child = spawn(process.execPath, [ENROLLD_BIN, 'token', 'create', '--device', uniqueDeviceId()], {
        env: { PATH: process.env.PATH ?? '', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl },
        stdio: ['ignore', handle.fd, 'ignore'],
      });
      expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
    } finally {
      await handle.close();
    }
    expect(await readFile(file, 'utf8')).toMatch(/^ebt_\S+\n$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('a keyCompromise revocation withdraws unspent tokens; a new one needs --after-compromise and is recorded as such', async () => {
    const device = uniqueDeviceId('lost');
    expect((await enroll(await server.createToken(device), device)).status).toBe(201);
    const beforeRevoke = await enrolld(['token', 'create', '--device', device, '--replace']);
    expect(beforeRevoke.code).toBe(0);
    const revoked = await enrolld(['revoke', device, '--reason', 'keyCompromise']);
    expect(revoked.code).toBe(0);

    // The token made before the compromise no longer enrolls (the same 401 as any invalid token).
    expect((await enroll(beforeRevoke.stdout.trim(), device)).status).toBe(401);
    const plain = await enrolld(['token', 'create', '--device', device]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('revoked for keyCompromise');
    expect(plain.stderr).toContain('--after-compromise');

    const consented = await enrolld(['token', 'create', '--device', device, '--after-compromise']);
    expect(consented.code).toBe(0);
    expect(consented.stderr).toContain(`token for ${device} (after-compromise)`);
    const answer = await enroll(consented.stdout.trim(), device);
    expect(answer.status).toBe(201);

    const shown = await httpsRequest(server.apiUrl + routes.adminDeviceTokens(device), server.rootPem, { headers: { authorization: `Bearer ${server.adminToken}` } });
    const { tokens } = deviceTokensResponseSchema.parse(shown.json());
    expect(tokens.map((t) => [t.issuedAs, t.state])).toEqual([
      ['after-compromise', 'used'],
      ['re-issued', 'withdrawn'],
      ['new', 'used'],
    ]);
    expect(tokens[0]!.serial).toBe(answer.json().serial);
    expect(tokens[0]!.requestId).toEqual(expect.any(String));
    // Once re-enrolled, the device is no longer "compromised": a further token needs only --replace.
    expect((await enrolld(['token', 'create', '--device', device, '--replace'])).stderr).toContain(`token for ${device} (re-issued)`);

    const table = await enrolld(['token', 'show', device]);
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('withdrawn');
    expect(table.stdout).toContain(answer.json().serial);
    expect(table.stdout).not.toContain('\x1b['); // a pipe gets plain text
  });
});
