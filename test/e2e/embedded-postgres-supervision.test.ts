// `enrolld up` supervises its embedded Postgres: after a SIGKILL it restarts it with backoff and enrollment and
// /readyz come back, while the broker keeps admitting known devices from its in-memory registry (the outage is far
// shorter than BROKER_MAX_STALENESS); when the restarts keep failing it exits non-zero so an outer supervisor can act.
import { afterEach, describe, expect, it } from '@jest/globals';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { routes, type CreatedToken } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { postmasterPid } from '../support/private-postgres.js';
import { spawnEnrolld, type EnrolldProcess } from '../support/processes.js';
import { rawConnect } from '../support/raw-mqtt.js';
import { waitFor } from '../support/wait-for.js';

interface Running {
  enrolld: EnrolldProcess;
  home: string;
  apiUrl: string;
  mqttsPort: number;
  rootPem: string;
  adminToken: string;
}

/** The default BROKER_MAX_STALENESS: a broker admits from its last state for this long without a sync. */
const MAX_STALENESS_MS = 60_000;

async function startUp(env: Record<string, string>): Promise<Running> {
  const home = await mkdtemp(path.join(tmpdir(), 'enrolld-supervise-'));
  // No DATABASE_URL: the embedded Postgres is what is under test. JOBS=off: no Redis needed.
  const enrolld = await spawnEnrolld({ ENROLLD_HOME: home, HTTPS_PORT: '0', MQTTS_PORT: '0', LISTEN_HOST: '127.0.0.1', JOBS: 'off', ...env });
  return {
    enrolld,
    home,
    apiUrl: String(enrolld.ready.apiUrl),
    mqttsPort: Number(enrolld.ready.mqttsPort),
    rootPem: await readFile(path.join(home, 'ca', 'root.pem'), 'utf8'),
    adminToken: (await readFile(path.join(home, 'admin-token'), 'utf8')).trim(),
  };
}

function exitOf(enrolld: EnrolldProcess): Promise<number | null> {
  const { child } = enrolld;
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

function logLines(enrolld: EnrolldProcess, msg: string): Array<Record<string, unknown>> {
  return enrolld
    .output()
    .split('\n')
    .filter((line) => line.includes(`"msg":"${msg}`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('embedded Postgres supervision under `enrolld up`', () => {
  let running: Running | undefined;

  afterEach(async () => {
    if (!running) return;
    await running.enrolld.stop('SIGKILL');
    await rm(running.home, { recursive: true, force: true });
    running = undefined;
  });

  it('restarts a SIGKILLed Postgres: 503 + Retry-After meanwhile, known devices still admitted, then /readyz and enrollment come back', async () => {
    // A CONNECT per probe of one device: its CONNECT rate must not be what answers.
    running = await startUp({ EMBEDDED_PG_RESTART_DELAY: '500ms', BROKER_CONNECT_RATE: '1000', BROKER_CONNECT_BURST: '1000' });
    const { apiUrl, mqttsPort, rootPem, adminToken, enrolld } = running;
    const tokenFor = async (id: string) =>
      (await postJson(apiUrl + routes.adminTokens, rootPem, { deviceId: id }, { authorization: `Bearer ${adminToken}` })).json<CreatedToken[]>()[0]!.token;
    const deviceId = 'supervised-0001';
    const token = await tokenFor(deviceId);
    const csr = (await makeCsr({ cn: deviceId })).pem;

    // A device enrolled before the outage, known to the broker's registry: the CONNACK code of one CONNECT of it.
    const connectedId = 'supervised-mqtt';
    const connectedCsr = await makeCsr({ cn: connectedId });
    const enrolled = (await postJson(apiUrl + routes.enroll, rootPem, { token: await tokenFor(connectedId), csr: connectedCsr.pem })).json<{ certificate: string; chain: string }>();
    const connectedDevice = { deviceId: connectedId, keyPem: connectedCsr.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), chainPem: enrolled.certificate + enrolled.chain };
    const connack = async (): Promise<number | 'closed'> => {
      const raw = await rawConnect(mqttsPort, { caChainPem: rootPem }, connectedDevice, { connect: false });
      raw.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: connectedId, keepalive: 60 });
      const answer = await raw.next('connack').then((p) => (p.cmd === 'connack' ? (p.returnCode ?? 0) : 'closed'), () => 'closed' as const);
      raw.end();
      return answer;
    };
    expect(await connack()).toBe(0);

    const pid = await postmasterPid(path.join(running.home, 'pg'));
    const killedAt = performance.now();
    process.kill(pid, 'SIGKILL');

    // Every answer until /readyz is back, by route and status; and the CONNACKs given while the database was down.
    const seen: Record<string, number> = {};
    const note = (name: string, status: number | string) => (seen[`${name} ${status}`] = (seen[`${name} ${status}`] ?? 0) + 1);
    const connacksWhileDown: Array<number | 'closed'> = [];
    let retryAfter: string | undefined;
    await waitFor(
      async () => {
        // Database routes: enrollment, and the admin guard that looks the credential up.
        const enroll = await postJson(apiUrl + routes.enroll, rootPem, { token, csr });
        note('enroll', enroll.status);
        const admin = await httpsRequest(apiUrl + routes.adminDevices, rootPem, { headers: { authorization: `Bearer ${adminToken}` } });
        note('admin', admin.status);
        const code = await connack();
        note('connack', code);
        const health = await httpsRequest(apiUrl + routes.readyz, rootPem);
        note('readyz', health.status);
        if (admin.status === 503) {
          retryAfter ??= String(admin.headers['retry-after']);
          connacksWhileDown.push(code);
        }
        return health.status === 200;
      },
      60_000,
      '/readyz after the embedded Postgres was killed',
      50,
    );
    const backMs = Math.round(performance.now() - killedAt);

    // Enrolled by the loop once the database answered, or now: a retry with the same token and CSR gets the certificate.
    const res = await postJson(apiUrl + routes.enroll, rootPem, { token, csr });
    expect(res.status).toBe(201);
    expect(Object.keys(seen).filter((k) => k.startsWith('enroll ') && !['enroll 503', 'enroll 201'].includes(k))).toEqual([]);
    const [exited] = logLines(enrolld, 'embedded Postgres exited');
    expect(exited).toMatchObject({ signal: 'SIGKILL' });
    const [restarted] = logLines(enrolld, 'embedded Postgres restarted');
    expect(restarted).toMatchObject({ attempt: 1 });
    expect(restarted!.pid).not.toBe(pid);
    // While it was down, nothing got a 5xx other than 503.
    expect(Object.keys(seen).filter((k) => /\s5\d\d$/.test(k) && !k.endsWith(' 503'))).toEqual([]);
    if (seen['admin 503']) expect(Number(retryAfter)).toBeGreaterThan(0);
    // The broker answered every CONNECT of a device it knows from its registry, the database being down: CONNACK 0
    // within BROKER_MAX_STALENESS (the outage was shorter), never a refusal, never a dropped connection.
    expect(seen['admin 503']).toBeGreaterThan(0);
    expect(backMs).toBeLessThan(MAX_STALENESS_MS);
    expect(connacksWhileDown.length).toBeGreaterThan(0);
    expect(connacksWhileDown.filter((code) => code !== 0)).toEqual([]);
    expect(await connack()).toBe(0);

    const metrics = (await httpsRequest(apiUrl + routes.metrics, rootPem)).text;
    expect(metrics).toMatch(/^enrolld_embedded_postgres_restarts_total\{outcome="restarted"\} 1$/m);
    expect(metrics).toMatch(/^enrolld_database_up 1$/m);
    process.stdout.write(
      JSON.stringify({ id: 'FLT-embedded-restart', figures: { killToHealthzOkMs: backMs, downMsLogged: restarted!.downMs, restartDelayMs: 500, answersWhileDown: seen, connacksWhileDatabaseDown: connacksWhileDown.length } }) + '\n',
    );
    expect(await enrolld.stop()).toBe(0);
  }, 120_000);

  it('exits non-zero after EMBEDDED_PG_MAX_RESTARTS restarts that fail', async () => {
    running = await startUp({ EMBEDDED_PG_MAX_RESTARTS: '2', EMBEDDED_PG_RESTART_DELAY: '100ms' });
    const { enrolld } = running;
    const dataDir = path.join(running.home, 'pg');
    // The running server never rereads it; every restart refuses to start on it.
    await appendFile(path.join(dataDir, 'postgresql.auto.conf'), '\nthis line is not a setting\n');
    process.kill(await postmasterPid(dataDir), 'SIGKILL');

    const code = await exitOf(enrolld);
    if (code !== 1) process.stderr.write(enrolld.output());
    expect(code).toBe(1);
    expect(logLines(enrolld, 'embedded Postgres did not restart')).toHaveLength(2);
    expect(logLines(enrolld, 'embedded Postgres is down and did not come back after 2 restarts')).toHaveLength(1);
    expect(enrolld.output()).toContain('enrolld: embedded Postgres is down and did not come back after 2 restarts');
  }, 120_000);
});
