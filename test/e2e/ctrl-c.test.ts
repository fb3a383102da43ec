import { describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, spawnEnrolld } from '../support/processes.js';

describe('Ctrl-C on `enrolld up` with its embedded Postgres', () => {
  it('stops cleanly: exit 0, "stopped" last, and no warning about lost feeds although Postgres got the signal too', async () => {
    const home = await mkdtemp(path.join(tmpdir(), 'enrolld-ctrl-c-'));
    try {
      const enrolld = await spawnEnrolld(
        { ENROLLD_HOME: home, HTTPS_PORT: String(await freePort()), MQTTS_PORT: String(await freePort()), LISTEN_HOST: '127.0.0.1' },
        ['up'],
        90_000,
        { terminal: true },
      );
      expect(await enrolld.stop('SIGINT')).toBe(0); // SIGINT to the whole process group, as a terminal sends it
      const records = enrolld.output().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string });
      const shutdown = records.findIndex((r) => r.msg === 'shutting down');
      expect(shutdown).toBeGreaterThan(0);
      expect(records.at(-1)).toMatchObject({ msg: 'stopped', signal: 'SIGINT' });
      expect(records.slice(shutdown).filter((r) => r.level >= 40)).toEqual([]);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
