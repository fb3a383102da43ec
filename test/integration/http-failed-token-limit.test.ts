// Token guessing: a per-source-address limit on failed token attempts (429 + Retry-After, counted on /metrics), the
// client address in the log lines, and X-Forwarded-For honoured only from a configured proxy.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { problemType, routes } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';
import { createHttpApp, type HttpUseCases } from '../../server/src/http/app.js';
import { createLogger } from '../../server/src/logger.js';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

const LIMIT = 5;

function metricValue(text: string, name: string, route: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{route="${route}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('failed token attempts per source address, on `enrolld up` with Postgres', () => {
  let server: TestServer;

  beforeAll(async () => {
    // Loopback is the trusted proxy here, so X-Forwarded-For gives each test client an address of its own.
    server = await startTestServer({ env: { TOKEN_FAILURE_LIMIT: String(LIMIT), TOKEN_FAILURE_WINDOW: '10m', TRUSTED_PROXIES: 'loopback' } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('answers 401 to the first failures, then 429 with Retry-After, counted on /metrics', async () => {
    const csr = (await makeCsr({ cn: uniqueDeviceId() })).pem;
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof postJson>> | undefined;
    for (let i = 0; i < LIMIT + 10; i++) {
      const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token: `ebt_wrong-${i}`, csr }, { 'x-forwarded-for': '198.51.100.7' });
      statuses.push(res.status);
      refused ??= res.status === 429 ? res : undefined;
    }
    expect(statuses).toEqual([...Array(LIMIT).fill(401), ...Array(10).fill(429)]);
    expect(refused!.json().type).toBe(problemType('too-many-requests'));
    // LIMIT failures leak away per 10 min: the next one in 2 min.
    expect(Number(refused!.headers['retry-after'])).toBe(120);

    // The address is refused even with a valid token now; another address is not.
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const deviceCsr = (await makeCsr({ cn: deviceId })).pem;
    const blocked = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: deviceCsr }, { 'x-forwarded-for': '198.51.100.7' });
    expect(blocked.status).toBe(429);
    const other = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: deviceCsr }, { 'x-forwarded-for': '198.51.100.8' });
    expect(other.status).toBe(201);

    const metrics = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
    expect(metricValue(metrics, 'enrolld_http_token_failures_total', 'enroll')).toBe(LIMIT);
    expect(metricValue(metrics, 'enrolld_http_token_throttled_total', 'enroll')).toBe(10 + 1);
  });

  it('never refuses a burst of good enrollments from one address, however many more than the limit', async () => {
    const devices = await Promise.all(
      Array.from({ length: LIMIT * 6 }, async () => {
        const deviceId = uniqueDeviceId('burst');
        return { token: await server.createToken(deviceId), csr: (await makeCsr({ cn: deviceId })).pem };
      }),
    );
    const answers = await Promise.all(
      devices.map((d) => postJson(server.apiUrl + routes.enroll, server.rootPem, { token: d.token, csr: d.csr }, { 'x-forwarded-for': '198.51.100.9' })),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(LIMIT * 6).fill(201));
  });

  it('a burst of wrong tokens sent at once: those in flight get 401, and the address then waits at most about one window', async () => {
    const csr = (await makeCsr({ cn: uniqueDeviceId() })).pem;
    const burst = await Promise.all(
      Array.from({ length: 40 }, (_, i) => postJson(server.apiUrl + routes.enroll, server.rootPem, { token: `ebt_burst-${i}`, csr }, { 'x-forwarded-for': '198.51.100.10' })),
    );
    const statuses = burst.map((r) => r.status);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThanOrEqual(LIMIT);
    const after = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token: 'ebt_after', csr }, { 'x-forwarded-for': '198.51.100.10' });
    expect(after.status).toBe(429);
    // The bucket holds at most 2 × LIMIT: (2 × 5 − 4) failures to leak at 2 min each.
    expect(Number(after.headers['retry-after'])).toBeLessThanOrEqual(12 * 60);
  });

  it('limits EST Basic credentials and admin bearer credentials the same way', async () => {
    const est = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      est.push(
        await httpsRequest(server.apiUrl + routes.est.simpleenroll, server.rootPem, {
          method: 'POST',
          headers: {
            'content-type': 'application/pkcs10',
            authorization: `Basic ${Buffer.from(`dev-x:ebt_wrong-${i}`).toString('base64')}`,
            'x-forwarded-for': '198.51.100.20',
          },
          body: (await makeCsr({ cn: 'dev-x' })).der.toString('base64'),
        }),
      );
    }
    expect(est.map((r) => r.status)).toEqual([...Array(LIMIT).fill(401), 429, 429]);

    // A request without credentials (a client waiting for the 401 challenge before it sends Basic) is no guess: it counts for nothing.
    for (let i = 0; i < LIMIT + 2; i++) {
      const challenge = await httpsRequest(server.apiUrl + routes.est.simpleenroll, server.rootPem, {
        method: 'POST',
        headers: { 'content-type': 'application/pkcs10', 'x-forwarded-for': '198.51.100.23' },
        body: (await makeCsr({ cn: 'dev-y' })).der.toString('base64'),
      });
      expect(challenge.status).toBe(401);
      expect(challenge.headers['www-authenticate']).toMatch(/^Basic /);
    }
    const guess = await httpsRequest(server.apiUrl + routes.est.simpleenroll, server.rootPem, {
      method: 'POST',
      headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from('dev-y:ebt_wrong').toString('base64')}`, 'x-forwarded-for': '198.51.100.23' },
      body: (await makeCsr({ cn: 'dev-y' })).der.toString('base64'),
    });
    expect(guess.status).toBe(401);

    const admin = [];
    for (let i = 0; i < LIMIT + 1; i++) {
      admin.push(await httpsRequest(server.apiUrl + routes.adminDevices, server.rootPem, { headers: { authorization: 'Bearer eat_wrong', 'x-forwarded-for': '198.51.100.21' } }));
    }
    expect(admin.map((r) => r.status)).toEqual([...Array(LIMIT).fill(401), 429]);
    // The right admin credential from another address still works: successes never count.
    for (let i = 0; i < LIMIT + 1; i++) {
      const ok = await httpsRequest(server.apiUrl + routes.adminDevices, server.rootPem, { headers: { authorization: `Bearer ${server.adminToken}`, 'x-forwarded-for': '198.51.100.22' } });
      expect(ok.status).toBe(200);
    }
  });
});

describe('the client address in log lines, and X-Forwarded-For only from trusted proxies', () => {
  async function serve(trustedProxies: string[]) {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    const app = createHttpApp({
      logger: createLogger('info', stream),
      registry: new Registry(),
      useCases: {
        authenticateAdmin: {
          bearer: async () => {
            throw new EnrollError('unauthorized', 'admin credential required', { logDetail: 'unknown' });
          },
        },
      } as unknown as HttpUseCases,
      chainPem: '',
      popLinking: 'off',
      checkReadiness: async () => ({}),
      trustedProxies,
      failedTokenLimit: { limit: 3, windowMs: 60_000 },
      consoleSessionTtlMs: 60_000,
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${routes.adminDevices}`;
    const get = (forwardedFor: string) =>
      new Promise<number>((resolve, reject) => {
        http.get(url, { headers: { authorization: 'Bearer eat_wrong', 'x-forwarded-for': forwardedFor }, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        }).on('error', reject);
      });
    return { lines, get, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  }

  it('without a trusted proxy, X-Forwarded-For neither names the client in the log nor escapes the limit', async () => {
    const app = await serve([]);
    try {
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push(await app.get(`203.0.113.${i}`));
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      const refusals = app.lines.filter((l) => l.kind === 'unauthorized' || l.kind === 'too-many-requests');
      expect(refusals).toHaveLength(5);
      for (const line of refusals) expect(line.client).toBe('127.0.0.1');
    } finally {
      await app.close();
    }
  });

  it('from a trusted proxy, the client is the address X-Forwarded-For names', async () => {
    const app = await serve(['127.0.0.1']);
    try {
      expect(await app.get('203.0.113.9')).toBe(401);
      expect(await app.get('10.1.2.3, 203.0.113.10')).toBe(401);
      const clients = app.lines.filter((l) => l.kind === 'unauthorized').map((l) => l.client);
      expect(clients).toEqual(['203.0.113.9', '203.0.113.10']);
    } finally {
      await app.close();
    }
  });
});
