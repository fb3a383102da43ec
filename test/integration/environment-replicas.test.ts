// Two API replicas over one Postgres whose homes share `ca/` but not `envs/` (docs/architecture.md §4, §5, "Deployment
// map"): an environment created through one is recorded in Postgres, its key only in that replica's home. Through the
// other, every route that needs that CA answers 503 `environment-ca-unavailable` telling the operator what to share,
// logs one line naming the environment and the file, and /readyz names the environment; once envs/<name>/ is copied
// in, the same replica signs.
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemType, routes, type EnrollResponse } from '@enrolld/protocol';
import { buildApi, type BuiltApi } from '../../server/src/compose/api.js';
import { loadConfig } from '../../server/src/config.js';
import { createLogger } from '../../server/src/logger.js';
import { makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { createEnvironment, enrollIn, tokenIn } from '../support/environments.js';
import { httpsRequest, postJson, type RawResponse } from '../support/http.js';
import { renewRest } from '../support/renew-support.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

/** The log lines of a replica, parsed. */
function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  let rest = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = rest + chunk.toString();
      const parts = text.split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines };
}

describe('an environment created through one API replica, used through another whose home lacks its CA', () => {
  const env = 'replica-only';
  let creator: TestServer;
  let homeB: string;
  let replica: BuiltApi;
  let b: TestServer;
  const log = logCapture();

  /** An `enrolld api` on the creator's database whose home has the home CA, its TLS material and the admin token, as an operator copies them, and no envs/. */
  async function replicaWithoutEnvs(logs: ReturnType<typeof logCapture>): Promise<{ api: BuiltApi; home: string; server: TestServer }> {
    const home = await mkdtemp(path.join(tmpdir(), 'enrolld-replica-'));
    for (const dir of ['ca', 'tls']) await cp(path.join(creator.home, dir), path.join(home, dir), { recursive: true });
    await cp(path.join(creator.home, 'admin-token'), path.join(home, 'admin-token'));
    const config = loadConfig({
      ENROLLD_HOME: home,
      HTTPS_PORT: '0',
      LISTEN_HOST: '127.0.0.1',
      DATABASE_URL: creator.db.url,
      LOG_LEVEL: 'info',
      JOBS_PREFIX: `env-replicas-${process.pid}`,
    });
    const api = await buildApi(config, createLogger(config.logLevel, logs.stream));
    try {
      const { url } = await api.listen();
      return { api, home, server: { ...creator, apiUrl: url } };
    } catch (error) {
      await api.stop();
      throw error;
    }
  }

  beforeAll(async () => {
    creator = await startTestServer({ env: { JOBS: 'off' } });
    // The replica runs before the environment exists, as replicas do when an admin creates one.
    ({ api: replica, home: homeB, server: b } = await replicaWithoutEnvs(log));
    await createEnvironment(creator, env);
  }, 120_000);
  afterAll(async () => {
    await replica?.stop();
    await creator?.stop();
    if (homeB) await rm(homeB, { recursive: true, force: true });
  });

  /** A 503 problem of the kind, naming the environment and telling the operator to share envs/, never a bare 500. */
  function expectCaUnavailable(res: RawResponse): void {
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toMatchObject({
      type: problemType('environment-ca-unavailable'),
      status: 503,
      environment: env,
      detail: expect.stringContaining('share ENROLLD_HOME/envs/ between every API replica and the worker'),
    });
  }

  it("the replica's /readyz names the environment (still 200: it serves the others) and it logs the file it lacks once", async () => {
    const ready = await httpsRequest(b.apiUrl + routes.readyz, b.rootPem);
    expect(ready.status).toBe(200);
    expect(ready.json()).toMatchObject({ status: 'ready', environmentsWithoutCa: [env] });
    await httpsRequest(b.apiUrl + routes.readyz, b.rootPem);
    const warnings = log.lines.filter((l) => l.environment === env && typeof l.missing === 'string');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.missing).toBe(path.join(homeB, 'envs', env, 'issuing.pem'));
    const creatorReady = await httpsRequest(creator.apiUrl + routes.readyz, creator.rootPem);
    expect(creatorReady.json()).not.toHaveProperty('environmentsWithoutCa');
  });

  it('a replica that starts after the environment exists starts (its CRL unsigned) and says so at start', async () => {
    const logs = logCapture();
    const late = await replicaWithoutEnvs(logs);
    try {
      expect(logs.lines.filter((l) => l.environment === env && typeof l.missing === 'string')).toHaveLength(1);
      expect((await httpsRequest(late.server.apiUrl + routes.readyz, late.server.rootPem)).json()).toMatchObject({ status: 'ready', environmentsWithoutCa: [env] });
    } finally {
      await late.api.stop();
      await rm(late.home, { recursive: true, force: true });
    }
  });

  it('CRL, enrollment (REST and EST) and renewal of that environment answer 503 environment-ca-unavailable; `default` works', async () => {
    // Nobody has fetched this environment's CRL yet: the replica would have to sign the first one.
    expectCaUnavailable(await httpsRequest(`${b.apiUrl}${routes.crl}?env=${env}`, b.rootPem));

    const deviceId = randomDeviceId('replica-enroll');
    const token = await tokenIn(b, env, deviceId); // no CA needed: the token is a row
    const csr = await makeCsr({ cn: deviceId });
    const before = log.lines.length;
    expectCaUnavailable(await postJson(b.apiUrl + routes.enroll, b.rootPem, { token, csr: csr.pem }));
    // One line for the request: the environment and the file, no key material.
    const logged = log.lines.slice(before).filter((l) => l.kind === 'environment-ca-unavailable');
    expect(logged).toHaveLength(1);
    expect(logged[0]!.why).toContain(`environment ${env}: ENOENT`);
    expect(logged[0]!.why).toContain(path.join(homeB, 'envs', env));
    expect(JSON.stringify(log.lines)).not.toContain('PRIVATE KEY');

    expectCaUnavailable(
      await httpsRequest(b.apiUrl + routes.est.labelled(env, 'simpleenroll'), b.rootPem, {
        method: 'POST',
        headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${deviceId}:${token}`).toString('base64')}` },
        body: csr.der.toString('base64'),
      }),
    );

    // A device the creator enrolled renews through the other replica.
    const device = await enrollIn(creator, env, randomDeviceId('replica-renew'));
    expectCaUnavailable(await renewRest(b, device, (await makeCsr({ cn: device.deviceId })).pem));

    const defaultId = randomDeviceId('replica-default');
    const other = await postJson(b.apiUrl + routes.enroll, b.rootPem, { token: await creator.createToken(defaultId), csr: (await makeCsr({ cn: defaultId })).pem });
    expect(other.status).toBe(201);
  });

  it('once envs/<name>/ is in its home, the same replica signs for the environment and /readyz no longer names it', async () => {
    await mkdir(path.join(homeB, 'envs'), { recursive: true });
    await cp(path.join(creator.home, 'envs', env), path.join(homeB, 'envs', env), { recursive: true });
    const deviceId = randomDeviceId('replica-after');
    const token = await tokenIn(b, env, deviceId);
    const res = await postJson(b.apiUrl + routes.enroll, b.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    expect(res.status).toBe(201);
    expect(res.json<EnrollResponse>().certificate).toContain('BEGIN CERTIFICATE');
    const ready = await httpsRequest(b.apiUrl + routes.readyz, b.rootPem);
    expect(ready.json()).not.toHaveProperty('environmentsWithoutCa');
    expect(log.lines.some((l) => l.environment === env && l.msg === "the environment's CA is in ENROLLD_HOME now")).toBe(true);
  });
});
