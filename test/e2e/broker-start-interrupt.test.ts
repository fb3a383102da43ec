// A signal that arrives while `enrolld broker` is still starting (docs/architecture.md §4, "The CLI"): a cluster node
// waits for its bus before it listens, and a REDIS_URL that never answers keeps it waiting. Ctrl-C must still end it,
// with a message and exit 130 (SIGTERM 143), as a shell reports a command a signal ended.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { ENROLLD_BIN, REPO_ROOT } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const run = promisify(execFile);

describe('`enrolld broker` interrupted while it waits for its cluster bus', () => {
  let db: TestDatabase;
  let home: string;
  // Accepts connections and never answers: a Redis behind a black-holing network.
  let silent: net.Server;
  const held: net.Socket[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-broker-interrupt-'));
    await run(process.execPath, [ENROLLD_BIN, 'ca', 'init'], { env: { PATH: process.env.PATH ?? '', ENROLLD_HOME: home } });
    silent = net.createServer((socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  }, 60_000);
  afterAll(async () => {
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
    await db?.drop();
    if (home) await rm(home, { recursive: true, force: true });
  });

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('%s after its HTTP port listens and before MQTT does: it stops, says so and exits %i', async (signal, code) => {
    const child = spawn(process.execPath, [ENROLLD_BIN, 'broker'], {
      cwd: REPO_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/root',
        LOG_LEVEL: 'info',
        ENROLLD_HOME: home,
        DATABASE_URL: db.url,
        LISTEN_HOST: '127.0.0.1',
        MQTTS_PORT: '0',
        BROKER_HTTP_PORT: '0',
        BROKER_CLUSTER: 'redis',
        REDIS_URL: `redis://127.0.0.1:${(silent.address() as net.AddressInfo).port}`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    try {
      await waitFor(() => stdout.includes('"broker HTTP listening'), 30_000, `the broker's HTTP port:\n${stdout}${stderr}`, 50);
      // It is waiting for the bus: connected to the silent server, MQTT not listening.
      await waitFor(() => held.length > 0, 10_000, 'a connection to REDIS_URL', 20);
      expect(stdout).not.toContain('MQTT broker listening');
      child.kill(signal);
      let exitCode: number | null | undefined;
      void exited.then((c) => (exitCode = c));
      await waitFor(() => exitCode !== undefined, 20_000, `the broker's exit after ${signal}:\n${stdout}${stderr}`, 50);
      expect(exitCode).toBe(code);
      expect(stderr).toContain(`enrolld: interrupted by ${signal} while starting; stopped`);
      expect(stdout).toContain('"interrupted while starting; stopping"');
      expect(stdout).not.toContain('MQTT broker listening');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
