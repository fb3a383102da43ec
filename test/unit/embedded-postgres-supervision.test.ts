// The restart policy of the embedded Postgres supervisor, on a fake cluster and a fake clock: doubling delays, a
// restart that dies within a minute counts as failed, a minute up starts the count over, and giving up rejects `failed`.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { EmbeddedPostgresExit, EmbeddedPostgresHandle } from '@enrolld/db';
import { superviseEmbeddedPostgres } from '../../server/src/compose/database.js';

function fakeCluster(startResults: boolean[]) {
  let onExit: ((exit: EmbeddedPostgresExit) => void) | undefined;
  const restarts: number[] = [];
  const handle: EmbeddedPostgresHandle = {
    url: 'postgres://fake',
    pid: () => 4242,
    onExit: (listener) => {
      onExit = listener;
    },
    restart: async () => {
      restarts.push(Date.now());
      if (!(startResults.shift() ?? true)) throw new Error('FATAL: configuration file contains errors');
    },
    stop: async () => undefined,
  };
  return { handle, restarts, die: () => onExit!({ code: null, signal: 'SIGKILL', lastLog: [] }) };
}

async function advance(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe('embedded Postgres supervision policy', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 0 });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('restarts after the delay, doubling it per failed restart, then gives up after maxRestarts', async () => {
    const cluster = fakeCluster([false, false, false]);
    const registry = new Registry();
    const supervision = superviseEmbeddedPostgres(cluster.handle, { maxRestarts: 3, restartDelayMs: 100, logger: pino({ level: 'silent' }), registry });
    let failure: unknown;
    supervision.failed.catch((error: unknown) => (failure = error));
    cluster.die();
    await advance(10_000);
    expect(cluster.restarts).toEqual([100, 300, 700]);
    expect(String(failure)).toContain('did not come back after 3 restarts');
    expect(await registry.getSingleMetricAsString('enrolld_embedded_postgres_restarts_total')).toContain('outcome="failed"} 3');
  });

  it('counts a restart that dies within a minute as failed, and starts over after a minute up', async () => {
    const cluster = fakeCluster([]);
    const supervision = superviseEmbeddedPostgres(cluster.handle, { maxRestarts: 2, restartDelayMs: 100, logger: pino({ level: 'silent' }) });
    let failure: unknown;
    supervision.failed.catch((error: unknown) => (failure = error));

    cluster.die();
    await advance(100); // restart 1 at 100
    await advance(30_000);
    cluster.die(); // dead again within a minute: restart 2, after 200 ms
    await advance(200);
    expect(cluster.restarts).toEqual([100, 30_300]);
    await advance(60_000); // a minute up: the count starts over
    cluster.die();
    await advance(100);
    expect(cluster.restarts).toHaveLength(3);
    expect(failure).toBeUndefined();

    cluster.die();
    await advance(200);
    cluster.die(); // third death within a minute of its restart: maxRestarts (2) used up
    await advance(1000);
    expect(cluster.restarts).toHaveLength(4);
    expect(String(failure)).toContain('did not come back after 2 restarts');
  });

  it('maxRestarts 0 gives up at the first death; stop() cancels a pending restart', async () => {
    const once = fakeCluster([]);
    const failing = superviseEmbeddedPostgres(once.handle, { maxRestarts: 0, restartDelayMs: 100, logger: pino({ level: 'silent' }) });
    let failure: unknown;
    failing.failed.catch((error: unknown) => (failure = error));
    once.die();
    await advance(0);
    expect(failure).toBeDefined();
    expect(once.restarts).toEqual([]);

    const stopped = fakeCluster([]);
    const supervision = superviseEmbeddedPostgres(stopped.handle, { maxRestarts: 5, restartDelayMs: 100, logger: pino({ level: 'silent' }) });
    stopped.die();
    supervision.stop();
    await advance(10_000);
    expect(stopped.restarts).toEqual([]);
  });
});
