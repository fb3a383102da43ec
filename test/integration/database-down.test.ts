import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemType, routes } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

describe('FLT-01: Postgres down before the request', () => {
  let server: TestServer;
  let proxy: TcpProxy;

  beforeAll(async () => {
    server = await startTestServer({
      databaseUrl: async (db) => {
        const url = new URL(db.url);
        proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
        url.port = String(proxy.port);
        return url.toString();
      },
    });
  });
  afterAll(async () => {
    await proxy.up().catch(() => undefined);
    await server.stop();
    await proxy.close();
  });

  it('answers a fast 503 with Retry-After, leaves the token untouched and signs nothing; works again once Postgres is back', async () => {
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const csr = (await makeCsr({ cn: deviceId })).pem;
    await proxy.down();

    const started = performance.now();
    const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr });
    const elapsedMs = performance.now() - started;
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json().type).toBe(problemType('unavailable'));
    // Not ready (drained by a load balancer), but alive (not restarted).
    const ready = await httpsRequest(server.apiUrl + routes.readyz, server.rootPem);
    expect(ready.status).toBe(503);
    // An RFC 9457 problem, like the broker's: the status for the load balancer, the checks for the operator.
    expect(ready.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(ready.json()).toMatchObject({
      type: problemType('unavailable'), status: 503, detail: 'not ready to serve: database', notReady: ['database'], checks: { database: false },
    });
    expect((await httpsRequest(server.apiUrl + routes.healthz, server.rootPem)).status).toBe(200);

    // Checked directly, not through the cut proxy.
    const token_ = await server.db.pool.query('SELECT used_at FROM bootstrap_tokens WHERE device_id = $1', [deviceId]);
    expect(token_.rows[0].used_at).toBeNull();
    const certs = await server.db.pool.query('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1', [deviceId]);
    expect(certs.rows[0].n).toBe(0);
    process.stdout.write(JSON.stringify({ id: 'FLT-01', pass: true, figures: { timeToErrorMs: Math.round(elapsedMs), signatures: certs.rows[0].n } }) + '\n');

    await proxy.up();
    const again = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr });
    expect(again.status).toBe(201);
  });
});
