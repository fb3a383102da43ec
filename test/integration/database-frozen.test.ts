// A frozen database (SIGSTOP on the postmaster and every backend of a test-owned Postgres): every route that needs it
// answers 503 with Retry-After within the configured bounds (DB_CHECKOUT_TIMEOUT for a new connection, DB_QUERY_TIMEOUT
// for one already open), never hangs; routes that do not need it keep answering; all of it works again after SIGCONT.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemType, routes } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson, type RawResponse } from '../support/http.js';
import { startPrivatePostgres, type PrivatePostgres } from '../support/private-postgres.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { waitFor } from '../support/wait-for.js';

const CHECKOUT_MS = 1000;
const STATEMENT_MS = 1000;
const QUERY_MS = 1500;
/** A request meets at most one of the two waits: it fails on the first query that gets no answer. */
const BOUND_MS = Math.max(CHECKOUT_MS, QUERY_MS);
/** Scheduling on a shared, busy machine; the hang this guards against lasts as long as the freeze. */
const SLACK_MS = 2500;

describe('FLT: Postgres frozen (SIGSTOP) under `enrolld up`', () => {
  let pg: PrivatePostgres;
  let server: TestServer;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    server = await startTestServer({
      databaseUrl: () => pg.url,
      env: { DB_CHECKOUT_TIMEOUT: `${CHECKOUT_MS}ms`, DB_STATEMENT_TIMEOUT: `${STATEMENT_MS}ms`, DB_QUERY_TIMEOUT: `${QUERY_MS}ms` },
    });
  }, 60_000);
  afterAll(async () => {
    pg?.thaw();
    await server?.stop();
    await pg?.stop();
  });

  it('answers 503 + Retry-After within the bound on every database route, keeps serving the others, and recovers', async () => {
    const auth = { authorization: `Bearer ${server.adminToken}` };
    // Setup runs under the same tight bounds, on a machine the other suites keep busy: a new connection to a Postgres
    // that has just started can take longer than CHECKOUT_MS. The 503 then says "retry after", and setup does, as any
    // client would; only the answers during the freeze are under test.
    await waitFor(async () => (await httpsRequest(server.apiUrl + routes.readyz, server.rootPem)).status === 200, 20_000, 'readyz before the freeze', 100);
    const createToken = async (deviceId: string): Promise<string> => {
      for (let attempt = 1; ; attempt++) {
        const res = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId }, auth);
        if (res.status === 201) return res.json<{ token: string }[]>()[0]!.token;
        if (res.status !== 503 || attempt === 5) throw new Error(`token create failed: ${res.status} ${res.text}`);
        await new Promise((resolve) => setTimeout(resolve, Number(res.headers['retry-after'] ?? 1) * 1000));
      }
    };
    const devices: Array<{ deviceId: string; token: string; csr: string }> = [];
    for (let i = 0; i < 4; i++) {
      const deviceId = uniqueDeviceId();
      devices.push({ deviceId, token: await createToken(deviceId), csr: (await makeCsr({ cn: deviceId })).pem });
    }
    // Warm connections in both pools, so the freeze meets open connections (query timeout) as well as new ones (checkout).
    await Promise.all(Array.from({ length: 6 }, () => httpsRequest(server.apiUrl + routes.readyz, server.rootPem)));
    await postJson(server.apiUrl + routes.adminRevokeDevice('nobody-yet'), server.rootPem, {}, auth);

    const frozen = await pg.freeze();
    expect(frozen.length).toBeGreaterThan(1);

    const timed = async (name: string, call: () => Promise<RawResponse>) => {
      const started = performance.now();
      const res = await call();
      return { name, res, ms: Math.round(performance.now() - started) };
    };
    const answers = await Promise.all([
      ...devices.map((d, i) => timed(`enroll ${i}`, () => postJson(server.apiUrl + routes.enroll, server.rootPem, { token: d.token, csr: d.csr }))),
      timed('readyz', () => httpsRequest(server.apiUrl + routes.readyz, server.rootPem)),
      timed('admin devices', () => httpsRequest(server.apiUrl + routes.adminDevices, server.rootPem, { headers: auth })),
      timed('admin tokens', () => postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId: uniqueDeviceId() }, auth)),
      timed('revoke', () => postJson(server.apiUrl + routes.adminRevokeDevice(devices[0]!.deviceId), server.rootPem, {}, auth)),
    ]);
    // While those waited, the routes that need no database answered at once.
    const ca = await timed('ca', () => httpsRequest(server.apiUrl + routes.ca, server.rootPem));
    expect(ca.res.status).toBe(200);

    for (const { name, res, ms } of answers) {
      expect({ name, status: res.status }).toEqual({ name, status: 503 });
      if (name !== 'readyz') {
        expect(res.json().type).toBe(problemType('unavailable'));
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      expect({ name, ms: Math.min(ms, BOUND_MS + SLACK_MS) }).toEqual({ name, ms });
    }
    process.stdout.write(
      JSON.stringify({ id: 'FLT-frozen', figures: { boundMs: BOUND_MS, frozenProcesses: frozen.length, answerMs: Object.fromEntries(answers.map((a) => [a.name, a.ms])), caMs: ca.ms } }) + '\n',
    );

    // /metrics says so: the probe gets no answer within the bound.
    const frozenMetrics = await httpsRequest(server.apiUrl + routes.metrics, server.rootPem);
    expect(frozenMetrics.text).toMatch(/^enrolld_database_up 0$/m);

    pg.thaw();
    await waitFor(async () => (await httpsRequest(server.apiUrl + routes.readyz, server.rootPem)).status === 200, 20_000, 'readyz after SIGCONT', 100);
    for (const d of devices) {
      const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token: d.token, csr: d.csr });
      expect(res.status).toBe(201);
    }
    expect((await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text).toMatch(/^enrolld_database_up 1$/m);
  }, 60_000);
});
