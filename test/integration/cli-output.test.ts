import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { ENROLLD_BIN } from '../support/processes.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

/** An SGR sequence (colour, bold…): what NO_COLOR and pipes must not get. */
const COLOUR = /\x1b\[[0-9;]*m/;

describe('CLI output: colour only on a terminal without NO_COLOR; plain text in pipes', () => {
  let server: TestServer;

  /** Runs `enrolld <args>`, either with stdout and stderr as pipes, or on a pseudo-terminal (util-linux `script`). */
  function enrolld(args: string[], how: 'pipe' | 'terminal', env: Record<string, string> = {}): Promise<string> {
    const fullEnv = { PATH: process.env.PATH ?? '', TERM: 'xterm-256color', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl, ...env };
    const command = how === 'pipe' ? [process.execPath, ENROLLD_BIN, ...args] : ['script', '-qec', [process.execPath, ENROLLD_BIN, ...args].join(' '), '/dev/null'];
    return new Promise((resolve, reject) => {
      execFile(command[0]!, command.slice(1), { env: fullEnv }, (error, stdout, stderr) => (error ? reject(error) : resolve(stdout + stderr)));
    });
  }

  beforeAll(async () => {
    server = await startTestServer();
    for (let i = 0; i < 3; i++) await server.createToken(uniqueDeviceId('out'));
  });
  afterAll(async () => {
    await server.stop();
  });

  it('a terminal gets the coloured table header (the control for the cases below)', async () => {
    const out = await enrolld(['devices', 'list'], 'terminal');
    expect(out).toContain('pending');
    expect(out).toMatch(COLOUR);
  });

  it('NO_COLOR on a terminal gives the same table without colour', async () => {
    const out = await enrolld(['devices', 'list'], 'terminal', { NO_COLOR: '1' });
    expect(out).toContain('pending');
    expect(out).not.toMatch(COLOUR);
  });

  it('a pipe gets plain text with no escape sequence at all', async () => {
    for (const args of [['devices', 'list'], ['devices', 'list', '--limit', '2'], ['token', 'show', (await firstDevice())]]) {
      const out = await enrolld(args, 'pipe');
      expect({ args, escape: out.includes('\x1b') }).toEqual({ args, escape: false });
    }
    const limited = await enrolld(['devices', 'list', '--limit', '2'], 'pipe');
    expect(limited).toMatch(/2 devices: 2 pending \(more exist; --limit 2 stopped the list\)/);
  });

  async function firstDevice(): Promise<string> {
    const { rows } = await server.db.pool.query<{ id: string }>('SELECT id FROM devices ORDER BY id LIMIT 1');
    return rows[0]!.id;
  }
});
