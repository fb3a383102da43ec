// Bulk revocation through the real composition (`enrolld up`, in-process BullMQ worker on the machine's Redis): dry run,
// execution as a job with progress, live sessions cut as for a single revocation, a selector that matches nothing,
// bad input, and the CLI (`enrolld revoke --prefix … [--dry-run]`).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { routes, type BulkDryRunResponse, type BulkRevocationJobBody, type EnrollResponse, type FleetPage } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { ENROLLD_BIN, REPO_ROOT } from '../support/processes.js';
import { mustConnect, type DeviceSession } from '../support/renew-mqtt.js';
import { enrollDevice, type DeviceCreds } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { waitForValue } from '../support/wait-for.js';

const run = promisify(execFile);

describe('bulk revocation', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function enrollMany(prefix: string, count: number): Promise<DeviceCreds[]> {
    const out: DeviceCreds[] = [];
    for (let i = 0; i < count; i += 10) {
      out.push(...(await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => enrollDevice(server, `${prefix}${String(i + j).padStart(3, '0')}`)))));
    }
    return out;
  }

  const post = (body: unknown) => postJson(server.apiUrl + routes.adminBulkRevocations, server.rootPem, body, auth());
  const job = async (id: string) => (await httpsRequest(server.apiUrl + routes.adminBulkRevocation(id), server.rootPem, { headers: auth() })).json<BulkRevocationJobBody>();
  const finished = (id: string) =>
    waitForValue(async () => {
      const j = await job(id);
      return j.status === 'done' || j.status === 'failed' ? j : undefined;
    }, 30_000, `bulk revocation ${id} finished`, 50);

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [ENROLLD_BIN, ...args], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('dry run counts and samples without changing anything; the job revokes every target once and cuts live sessions', async () => {
    const prefix = `${uniqueDeviceId('line')}-`;
    const devices = await enrollMany(prefix, 40);
    const other = await enrollDevice(server, uniqueDeviceId('keep'));
    const sessions: DeviceSession[] = await Promise.all(devices.slice(0, 8).map((d) => mustConnect(server.running.mqttsPort, server.rootPem, d)));
    const bystander = await mustConnect(server.running.mqttsPort, server.rootPem, other);

    const dry = await post({ selector: { prefix }, reason: 'keyCompromise', dryRun: true });
    expect(dry.status).toBe(200);
    const preview = dry.json<BulkDryRunResponse>();
    expect(preview.count).toBe(40);
    expect(preview.sample).toHaveLength(20);
    expect(preview.sample[0]).toEqual({ deviceId: devices[0]!.deviceId, serial: devices[0]!.serial });
    const unrevoked = await server.db.pool.query(`SELECT count(*)::int AS n FROM certificates WHERE starts_with(device_id, $1) AND revoked_at IS NULL`, [prefix]);
    expect(unrevoked.rows[0].n).toBe(40);

    const started = await post({ selector: { prefix }, reason: 'keyCompromise' });
    expect(started.status).toBe(202);
    const body = started.json<BulkRevocationJobBody>();
    expect(started.headers.location).toBe(routes.adminBulkRevocation(body.id));
    expect(body).toMatchObject({ total: 40, reason: 'keyCompromise', selector: { prefix } });
    const done = await finished(body.id);
    expect(done).toMatchObject({ status: 'done', total: 40, done: 40, revoked: 40, error: null });

    // Every live session of a target ends; the bystander's stays (checked after the positive markers).
    await Promise.all(sessions.map((s) => s.closed));
    expect(bystander.client.connected).toBe(true);
    const audit = await server.db.pool.query<{ serial: string; n: number }>(
      `SELECT serial, count(*)::int AS n FROM audit_events WHERE action = 'certificate.revoked' AND request_id = $1 GROUP BY serial`,
      [`bulk:${body.id}`],
    );
    expect(audit.rows).toHaveLength(40);
    expect(audit.rows.every((r) => r.n === 1)).toBe(true);
    expect(new Set(audit.rows.map((r) => r.serial))).toEqual(new Set(devices.map((d) => d.serial)));
    const created = await server.db.pool.query(`SELECT detail FROM audit_events WHERE action = 'revocation.bulk.created' AND detail->>'jobId' = $1`, [body.id]);
    expect(created.rows[0].detail).toMatchObject({ total: 40, reason: 'keyCompromise' });

    // Running it again (BullMQ is at-least-once) changes nothing.
    const again = await server.running.useCases.bulkRevocation.run(body.id);
    expect(again).toMatchObject({ done: 40, revoked: 40 });
    await bystander.end();
  });

  it('a selector that matches nothing: dry-run count 0, and executing it is a no-op job', async () => {
    const selector = { prefix: `${uniqueDeviceId('nothing')}-` };
    const dry = await post({ selector, dryRun: true });
    expect(dry.json<BulkDryRunResponse>()).toEqual({ dryRun: true, count: 0, sample: [] });
    const lastSeq = await server.running.useCases.revocation.ensureCrlCurrent().then(() => server.db.pool.query('SELECT max(revocation_seq) AS s FROM certificates'));
    const started = await post({ selector });
    expect(started.status).toBe(202);
    const done = await finished(started.json<BulkRevocationJobBody>().id);
    expect(done).toMatchObject({ status: 'done', total: 0, done: 0, revoked: 0 });
    const after = await server.db.pool.query('SELECT max(revocation_seq) AS s FROM certificates');
    expect(after.rows[0].s).toBe(lastSeq.rows[0].s);
  });

  it('selects by serial list, status and issue date', async () => {
    const prefix = `${uniqueDeviceId('sel')}-`;
    const devices = await enrollMany(prefix, 4);
    const bySerials = await post({ selector: { serials: [devices[1]!.serial, devices[3]!.serial] }, dryRun: true });
    expect(bySerials.json<BulkDryRunResponse>().sample.map((t) => t.deviceId)).toEqual([devices[1]!.deviceId, devices[3]!.deviceId]);
    const future = new Date(Date.now() + 3600_000).toISOString();
    const none = await post({ selector: { prefix, issuedAfter: future }, dryRun: true });
    expect(none.json<BulkDryRunResponse>().count).toBe(0);
    const all = await post({ selector: { prefix, issuedBefore: future, status: 'active' }, dryRun: true });
    expect(all.json<BulkDryRunResponse>().count).toBe(4);
  });

  it.each([
    ['an empty selector', { selector: {} }],
    ['an unknown selector field', { selector: { colour: 'red' } }],
    ['a bad prefix', { selector: { prefix: 'Bad/' } }],
    ['a bad serial', { selector: { serials: ['XYZ'] } }],
    ['a reason that is not offered', { selector: { prefix: 'a' }, reason: 'certificateHold' }],
    ['a bad date', { selector: { issuedBefore: 'yesterday' } }],
  ])('400 for %s', async (_name, body) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('GET of an unknown or malformed job id: 404 and 400', async () => {
    const unknown = await httpsRequest(server.apiUrl + routes.adminBulkRevocation('00000000-0000-4000-8000-000000000000'), server.rootPem, { headers: auth() });
    expect(unknown.status).toBe(404);
    const bad = await httpsRequest(server.apiUrl + routes.adminBulkRevocation('nope'), server.rootPem, { headers: auth() });
    expect(bad.status).toBe(400);
  });

  it('`enrolld revoke --prefix P --dry-run` prints the count; without --dry-run it follows the job to the end', async () => {
    const prefix = `${uniqueDeviceId('cli')}-`;
    await enrollMany(prefix, 12);
    const dry = await cli('revoke', '--prefix', prefix, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout.trim()).toBe('12');
    expect(dry.stderr).toContain('dry run: 12 certificate(s) would be revoked');
    const real = await cli('revoke', '--prefix', prefix, '--reason', 'cessationOfOperation');
    expect(real.code).toBe(0);
    expect(real.stderr).toContain('done: 12 revoked, 0 already revoked');
    const left = await cli('revoke', '--prefix', prefix, '--dry-run');
    expect(left.stdout.trim()).toBe('0');
    const usage = await cli('revoke', '--prefix', prefix, '--bogus');
    expect(usage.code).toBe(2);
  });

  it('a token batch: the CLI prints its id; `revoke --batch` takes exactly the devices that enrolled with it', async () => {
    const prefix = `${uniqueDeviceId('tb')}-`;
    const created = await cli('token', 'create', '--prefix', prefix, '--count', '5');
    expect(created.code).toBe(0);
    const [header, ...lines] = created.stdout.trim().split('\n');
    expect(header).toBe('deviceId,token,expiresAt,issuedAs,batchId');
    const rows = lines.map((l) => l.split(','));
    const batch = rows[0]![4]!;
    expect(rows.every((r) => r[4] === batch)).toBe(true);
    expect(created.stderr).toContain(`batch ${batch}`);
    // Three of the five enroll; a device of another batch under the same prefix stays out.
    for (const [deviceId, token] of rows.slice(0, 3)) {
      const csr = await makeCsr({ cn: deviceId! });
      const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
      expect(res.json<EnrollResponse>().deviceId).toBe(deviceId);
    }
    const outsider = await enrollDevice(server, `${prefix}x`);
    const session = await mustConnect(server.running.mqttsPort, server.rootPem, outsider);

    const search = await httpsRequest(`${server.apiUrl}${routes.adminFleet}?batch=${batch}`, server.rootPem, { headers: auth() });
    expect(search.json<FleetPage>().devices.map((d) => [d.id, d.tokenBatch])).toEqual(rows.slice(0, 3).map((r) => [r[0], batch]));
    const dry = await cli('revoke', '--batch', batch, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout.trim()).toBe('3');
    const real = await cli('revoke', '--batch', batch, '--reason', 'keyCompromise');
    expect(real.code).toBe(0);
    expect(real.stderr).toContain('done: 3 revoked, 0 already revoked');
    const left = await server.db.pool.query<{ device_id: string }>('SELECT device_id FROM certificates WHERE starts_with(device_id, $1) AND revoked_at IS NULL', [prefix]);
    expect(left.rows.map((r) => r.device_id)).toEqual([outsider.deviceId]);
    expect(session.client.connected).toBe(true);
    await session.end();

    // A batch id no device enrolled with: count 0 and a no-op job; not a UUID: 400 and a CLI usage error.
    const unknown = { selector: { tokenBatch: '00000000-0000-4000-8000-000000000000' } };
    expect((await post({ ...unknown, dryRun: true })).json<BulkDryRunResponse>()).toEqual({ dryRun: true, count: 0, sample: [] });
    const noop = await post(unknown);
    expect(noop.status).toBe(202);
    expect(await finished(noop.json<BulkRevocationJobBody>().id)).toMatchObject({ status: 'done', total: 0, revoked: 0 });
    expect((await post({ selector: { tokenBatch: 'line-7' }, dryRun: true })).status).toBe(400);
    expect((await httpsRequest(`${server.apiUrl}${routes.adminFleet}?batch=nope`, server.rootPem, { headers: auth() })).status).toBe(400);
    const usage = await cli('revoke', '--batch', 'nope', '--dry-run');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('is not a token batch id');
  });
});
