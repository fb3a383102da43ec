// The plain-HTTP port of a standalone `enrolld broker` (BROKER_HTTP_PORT), on real processes: /healthz while the process
// lives; /readyz 200 while the node admits and 503 problem+json naming the cluster bus from the loss of its Redis (a
// redis-server this test owns, killed with SIGKILL) until the node has resynced, then 200 again with no restart; /metrics
// with the broker's registry; anything else 404. And a busy BROKER_HTTP_PORT stops the start with a message naming it.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PROBLEM_TYPE_BASE } from '@enrolld/protocol';
import { clusterPrefixFor } from '../support/broker-harness.js';
import { ENROLLD_BIN, freePort, REPO_ROOT, spawnBroker, type BrokerProcess } from '../support/processes.js';
import { startTestRedisServer, type TestRedisServer } from '../support/redis-server.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { waitFor, waitForValue } from '../support/wait-for.js';

interface Answer {
  status: number;
  type: string;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

async function get(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const body = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body, json: <T>() => JSON.parse(body) as T };
}

/** The container's HEALTHCHECK of a broker (`healthcheck.mjs broker`): its exit code. */
function healthcheck(port: number): Promise<number> {
  const env = { PATH: process.env.PATH ?? '', LISTEN_HOST: '127.0.0.1', BROKER_HTTP_PORT: String(port) };
  return new Promise((resolve) => {
    execFile(process.execPath, [`${REPO_ROOT}server/scripts/healthcheck.mjs`, 'broker'], { env, timeout: 30_000 }, (error) => {
      resolve(error ? ((error as { code?: number }).code ?? 1) : 0);
    });
  });
}

describe('`enrolld broker` HTTP port: /healthz, /readyz, /metrics', () => {
  let server: TestServer;
  let redis: TestRedisServer;
  let broker: BrokerProcess;
  let base: string;

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
    redis = await startTestRedisServer();
    broker = await spawnBroker({
      ENROLLD_HOME: server.home,
      DATABASE_URL: server.db.url,
      LISTEN_HOST: '127.0.0.1',
      MQTTS_PORT: String(await freePort()),
      BROKER_CLUSTER: 'redis',
      REDIS_URL: redis.url,
      BROKER_CLUSTER_PREFIX: clusterPrefixFor('broker-http').replace(/:$/, ''),
    });
    base = `http://127.0.0.1:${broker.httpPort}`;
  }, 120_000);
  afterAll(async () => {
    await broker?.stop();
    await redis?.stop();
    await server?.stop();
  });

  it('/healthz: 200 while the process lives', async () => {
    const res = await get(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ status: 'alive' });
  });

  it('/readyz: 200 with every check true once the node admits', async () => {
    const res = await waitForValue(async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 200 ? r : undefined;
    }, 20_000, 'the broker to be ready');
    expect(res.json()).toEqual({ status: 'ready', checks: { mqtt: true, revocationState: true, clusterBus: true, profiles: true } });
    expect(await healthcheck(broker.httpPort)).toBe(0);
  });

  it('/readyz: 503 problem+json naming the cluster bus while Redis is down, 200 again after the node resynced, same process', async () => {
    const pid = broker.child.pid;
    try {
      await redis.kill();
      const down = await waitForValue(async () => {
        const r = await get(`${base}/readyz`);
        return r.status === 503 ? r : undefined;
      }, 20_000, '/readyz to answer 503 with Redis gone');
      expect(down.type).toMatch(/^application\/problem\+json/);
      const problem = down.json<{ type: string; status: number; detail: string; notReady: string[]; checks: Record<string, boolean> }>();
      expect(problem).toMatchObject({ type: `${PROBLEM_TYPE_BASE}unavailable`, status: 503, notReady: ['clusterBus'] });
      expect(problem.checks).toEqual({ mqtt: true, revocationState: true, clusterBus: false, profiles: true });
      expect(problem.detail).toContain('clusterBus');
      // Alive all the while: an orchestrator must not restart a node whose dependency is down.
      expect((await get(`${base}/healthz`)).status).toBe(200);
      expect(await healthcheck(broker.httpPort)).toBe(1);
      // Redis gone takes every channel (the connections' closes may reach the node one after the other).
      await waitFor(async () => {
        const body = (await get(`${base}/metrics`)).body;
        return ['control', 'store', 'data'].every((channel) => body.includes(`enrolld_broker_cluster_bus_up{channel="${channel}"} 0\n`));
      }, 10_000, 'every channel of the bus down on /metrics');
    } finally {
      await redis.restart();
    }
    const up = await waitForValue(async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 200 ? r : undefined;
    }, 30_000, '/readyz to answer 200 after the node resynced');
    expect(up.json<{ checks: Record<string, boolean> }>().checks.clusterBus).toBe(true);
    expect(broker.child.exitCode).toBeNull();
    expect(broker.child.pid).toBe(pid);
    const metrics = (await get(`${base}/metrics`)).body;
    // Redis gone took every channel: each counted one loss, and each is back.
    for (const channel of ['control', 'store', 'data']) {
      expect(metrics).toMatch(new RegExp(`^enrolld_broker_cluster_bus_up\\{channel="${channel}"\\} 1$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^enrolld_broker_cluster_bus_losses_total\\{channel="${channel}"\\} 1$`, 'm'));
    }
  }, 90_000);

  it('/metrics: the broker registry in the Prometheus text format', async () => {
    const res = await get(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^# TYPE enrolld_broker_connect_refusals_total counter$/m);
    expect(res.body).toMatch(/^enrolld_broker_connected_devices \d+$/m);
    expect(res.body).toMatch(/^process_cpu_seconds_total /m);
  });

  it('nothing else: another path is a 404 problem, another method a 400 problem', async () => {
    const missing = await get(`${base}/v1/admin/devices`);
    expect(missing.status).toBe(404);
    expect(missing.type).toMatch(/^application\/problem\+json/);
    expect(missing.json()).toMatchObject({ type: `${PROBLEM_TYPE_BASE}not-found`, status: 404 });
    const posted = await get(`${base}/readyz`, { method: 'POST', body: '{}' });
    expect(posted.status).toBe(400);
    expect(posted.json()).toMatchObject({ type: `${PROBLEM_TYPE_BASE}bad-request` });
  });

  it('a busy BROKER_HTTP_PORT: the start fails with a message naming the port and the setting', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const busy = (holder.address() as net.AddressInfo).port;
    try {
      const env = {
        PATH: process.env.PATH ?? '', ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, LISTEN_HOST: '127.0.0.1', MQTTS_PORT: '0', BROKER_HTTP_PORT: String(busy), LOG_LEVEL: 'info',
      };
      const result = await new Promise<{ code: number; output: string }>((resolve) => {
        execFile(process.execPath, [ENROLLD_BIN, 'broker'], { env, timeout: 60_000 }, (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
        });
      });
      expect(result.code).not.toBe(0);
      expect(result.output).toContain(`port ${busy} on 127.0.0.1 is in use; set BROKER_HTTP_PORT to another port`);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
  });
});
