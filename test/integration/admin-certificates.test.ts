// Admins by certificate on the real composition over real TLS: who may not use the admin API (a device or service
// certificate: 403; another CA's, a revoked or an expired admin certificate: 401), a role that changes without a new
// certificate, a browser request another site started, the fleet routes that cannot touch an admin, the audit actor
// of every admin action, the broker refusing an admin certificate, and ADMIN_BEARER=off after the documented bootstrap.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemType, routes, type AuditListResponse, type WhoamiResponse } from '@enrolld/protocol';
import { adminRequest, createAdmin, type AdminCaller } from '../support/admin-certs.js';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson, type RawResponse } from '../support/http.js';
import { connectWith } from '../support/renew-mqtt.js';
import { credsFrom, enrollDevice, issueFromServerCa, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { createTestPki } from '../support/test-pki.js';

function expectProblem(res: RawResponse, status: number, kind: 'unauthorized' | 'forbidden' | 'conflict' | 'not-found'): void {
  expect({ status: res.status, type: res.headers['content-type'] }).toEqual({ status, type: expect.stringContaining('application/problem+json') });
  expect(res.json().type).toBe(problemType(kind));
}

describe('admins by certificate', () => {
  let server: TestServer;
  const bearer = (): AdminCaller => ({ bearer: server.adminToken });
  const as = (caller: AdminCaller, method: string, path: string, body?: unknown, headers?: Record<string, string>) => adminRequest(server, caller, method, path, body, headers);
  /** The audit rows of one action, newest first, as the API lists them. */
  const audit = async (action: string, deviceId?: string) =>
    (await as(bearer(), 'GET', `${routes.adminAudit}?${new URLSearchParams({ action, ...(deviceId ? { deviceId } : {}) })}`)).json<AuditListResponse>().events;

  beforeAll(async () => {
    server = await startTestServer({ env: { TOKEN_FAILURE_LIMIT: '0' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('whoami names the credential: cert:<name> with its role, bearer:<credential name> as owner', async () => {
    const alice = await createAdmin(server, uniqueDeviceId('alice'), 'viewer');
    expect((await as({ cert: alice }, 'GET', routes.adminWhoami)).json<WhoamiResponse>()).toEqual({ actor: `cert:${alice.deviceId}`, role: 'viewer', credential: 'certificate' });
    const me = (await as(bearer(), 'GET', routes.adminWhoami)).json<WhoamiResponse>();
    expect(me).toMatchObject({ role: 'owner', credential: 'bearer', actor: expect.stringMatching(/^bearer:admin-[0-9a-f]{8}$/) });
  });

  it('an admin whose certificate is live gets another only with replace (409 says how); a name of a device is refused (400)', async () => {
    const name = uniqueDeviceId('twice');
    await createAdmin(server, name, 'viewer');
    const again = await as(bearer(), 'POST', routes.adminAdmins, { name, role: 'owner', csr: (await makeCsr({ cn: name })).pem });
    expectProblem(again, 409, 'conflict');
    expect(again.json().detail).toMatch(/1 admin\(s\) already have a live certificate .*enrolld admin create --replace/);
    const replaced = await as(bearer(), 'POST', routes.adminAdmins, { name, role: 'owner', csr: (await makeCsr({ cn: name })).pem, replace: true });
    expect(replaced.json()).toMatchObject({ deviceId: name, role: 'owner' });
    const device = await enrollDevice(server, uniqueDeviceId('taken'));
    const taken = await as(bearer(), 'POST', routes.adminAdmins, { name: device.deviceId, role: 'viewer', csr: (await makeCsr({ cn: device.deviceId })).pem });
    expect({ status: taken.status, detail: taken.json().detail }).toEqual({ status: 400, detail: `${device.deviceId}: already a device; an identity keeps its kind` });
  });

  it('a device or a service certificate is someone, but not an admin: 403 problem+json', async () => {
    const device = await enrollDevice(server, uniqueDeviceId('dev'));
    expectProblem(await as({ cert: device }, 'GET', routes.adminDevices), 403, 'forbidden');
    expect((await as({ cert: device }, 'GET', routes.adminDevices)).json().detail).toMatch(/a device certificate cannot use the admin API/);
    const name = uniqueDeviceId('svc');
    const csr = await makeCsr({ cn: name });
    const created = await as(bearer(), 'POST', routes.adminServices, { name, csr: csr.pem });
    const service = credsFrom(created.json(), csr.privateKey);
    expectProblem(await as({ cert: service }, 'POST', routes.adminTokens, { deviceId: uniqueDeviceId('x') }), 403, 'forbidden');
  });

  it('another CA\'s certificate naming an admin, an expired admin certificate, and no credential at all: 401', async () => {
    const name = uniqueDeviceId('mallory');
    await createAdmin(server, name, 'owner');
    const pki = await createTestPki();
    const forged = await pki.device(name, { sanUris: [`urn:enrolld:admin:${name}`] });
    expectProblem(await as({ cert: { clientChainPem: forged.chainPem, keyPem: forged.keyPem } }, 'GET', routes.adminWhoami), 401, 'unauthorized');

    const oldName = uniqueDeviceId('old');
    const expired = await issueFromServerCa(server, oldName, { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) }, 'admin');
    await server.db.pool.query(`INSERT INTO admins (name, role, created_by, updated_by) VALUES ($1, 'owner', 'test', 'test')`, [oldName]);
    const refused = await as({ cert: expired }, 'GET', routes.adminWhoami);
    expectProblem(refused, 401, 'unauthorized');
    expect(refused.json().detail).toMatch(/is not valid now/);
    expectProblem(await as('none', 'GET', routes.adminWhoami), 401, 'unauthorized');
  });

  it('a role changes at once with the same certificate; a revoked admin certificate is refused (401) from the answer on', async () => {
    const owner = await createAdmin(server, uniqueDeviceId('owner'), 'owner');
    const bob = await createAdmin(server, uniqueDeviceId('bob'), 'viewer', { cert: owner });
    const tokenFor = () => as({ cert: bob }, 'POST', routes.adminTokens, { deviceId: uniqueDeviceId('bobs') });
    expectProblem(await tokenFor(), 403, 'forbidden');
    expect((await as({ cert: owner }, 'PUT', routes.adminAdminRole(bob.deviceId), { role: 'operator' })).status).toBe(204);
    expect((await tokenFor()).status).toBe(201);

    const listed = (await as({ cert: owner }, 'GET', routes.adminAdmins)).json<{ admins: Array<{ name: string; role: string; status: string; currentSerial: string }> }>().admins;
    expect(listed.find((a) => a.name === bob.deviceId)).toMatchObject({ role: 'operator', status: 'active', currentSerial: bob.serial });

    const revoked = await as({ cert: owner }, 'POST', routes.adminAdminRevoke(bob.deviceId), { reason: 'keyCompromise' });
    expect(revoked.json()).toEqual({ deviceId: bob.deviceId, outcome: 'revoked', reason: 'keyCompromise', serials: [bob.serial] });
    const after = await as({ cert: bob }, 'GET', routes.adminWhoami);
    expectProblem(after, 401, 'unauthorized');
    expect(after.json().detail).toMatch(/is revoked/);
    expect((await as({ cert: owner }, 'GET', routes.adminAdmins)).json<{ admins: Array<{ name: string; status: string }> }>().admins.find((a) => a.name === bob.deviceId)).toMatchObject({ status: 'revoked' });

    // Created again, it gets a new certificate; the revoked one stays refused.
    const again = await createAdmin(server, bob.deviceId, 'viewer', { cert: owner });
    expect((await as({ cert: again }, 'GET', routes.adminWhoami)).status).toBe(200);
    expectProblem(await as({ cert: bob }, 'GET', routes.adminWhoami), 401, 'unauthorized');
  });

  it('an admin renews its certificate over POST /v1/renew like a service; the successor carries the same role', async () => {
    const erin = await createAdmin(server, uniqueDeviceId('erin'), 'operator');
    const csr = await makeCsr({ cn: erin.deviceId });
    const renewed = await renewRest(server, erin, csr.pem);
    expect(renewed.status).toBe(201);
    const successor = credsFrom(renewed.json(), csr.privateKey);
    expect(successor.serial).not.toBe(erin.serial);
    expect((await as({ cert: successor }, 'GET', routes.adminWhoami)).json<WhoamiResponse>()).toMatchObject({ actor: `cert:${erin.deviceId}`, role: 'operator' });
  });

  it('a state-changing request another site started is refused even with an admin certificate; the same origin is not', async () => {
    const owner = await createAdmin(server, uniqueDeviceId('browser'), 'owner');
    const own = new URL(server.apiUrl).origin;
    const body = { deviceId: uniqueDeviceId('csrf') };
    expectProblem(await as({ cert: owner }, 'POST', routes.adminTokens, body, { origin: 'https://evil.example' }), 403, 'forbidden');
    expectProblem(await as({ cert: owner }, 'POST', routes.adminTokens, body, { 'sec-fetch-site': 'cross-site' }), 403, 'forbidden');
    expect((await as({ cert: owner }, 'POST', routes.adminTokens, body, { origin: own, 'sec-fetch-site': 'same-origin' })).status).toBe(201);
    // Reads stay readable (a cross-site page cannot read the answer anyway).
    expect((await as({ cert: owner }, 'GET', routes.adminWhoami, undefined, { 'sec-fetch-site': 'cross-site' })).status).toBe(200);
  });

  it('the fleet routes never reach an admin: no device revoke, no bulk target, not in the device list', async () => {
    const prefix = `${uniqueDeviceId('fleetadm')}-`;
    const admin = await createAdmin(server, `${prefix}a`, 'viewer');
    expectProblem(await as(bearer(), 'POST', routes.adminRevokeDevice(admin.deviceId), {}), 404, 'not-found');
    expectProblem(await as(bearer(), 'POST', routes.adminRevokeCertificate(admin.serial), {}), 404, 'not-found');
    expect((await as(bearer(), 'POST', routes.adminBulkRevocations, { selector: { prefix }, dryRun: true })).json()).toMatchObject({ count: 0 });
    expect((await as(bearer(), 'GET', `${routes.adminDevices}?prefix=${prefix}`)).json().devices).toEqual([]);
    expect((await as({ cert: admin }, 'GET', routes.adminWhoami)).status).toBe(200);
  });

  it('every admin action names its actor in the audit trail: cert:<name>, or bearer:<credential name>', async () => {
    const carol = await createAdmin(server, uniqueDeviceId('carol'), 'owner');
    const actor = `cert:${carol.deviceId}`;
    const me = { cert: carol };
    const deviceId = uniqueDeviceId('audited');
    const device = await enrollDevice(server, deviceId);
    const token = (await as(me, 'POST', routes.adminTokens, { deviceId, replace: true })).json<Array<{ token: string }>>()[0]!.token;
    const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    expect(enrolled.status).toBe(201);
    expect((await as(me, 'POST', routes.adminRevokeCertificate(device.serial), { reason: 'superseded' })).status).toBe(200);
    expect((await as(me, 'POST', routes.adminRevokeDevice(deviceId), { comment: 'audited' })).status).toBe(200);
    const profile = uniqueDeviceId('prof');
    expect((await as(me, 'POST', routes.adminProfiles, { name: profile, kind: 'device', acl: [] })).status).toBe(201);
    expect((await as(me, 'PUT', routes.adminProfile(profile), { name: profile, kind: 'device', acl: [], description: 'v2' })).status).toBe(200);
    expect((await as(me, 'DELETE', routes.adminProfile(profile))).status).toBe(204);
    const bulk = await as(me, 'POST', routes.adminBulkRevocations, { selector: { prefix: `${deviceId}-none` } });
    expect(bulk.status).toBe(202);
    const service = uniqueDeviceId('svc');
    expect((await as(me, 'POST', routes.adminServices, { name: service, csr: (await makeCsr({ cn: service })).pem })).status).toBe(201);
    const dave = await createAdmin(server, uniqueDeviceId('dave'), 'viewer', me);
    expect((await as(me, 'PUT', routes.adminAdminRole(dave.deviceId), { role: 'operator' })).status).toBe(204);
    expect((await as(me, 'POST', routes.adminAdminRevoke(dave.deviceId))).status).toBe(200);

    expect((await audit('token.created', deviceId)).map((e) => e.actor)).toEqual([actor, expect.stringMatching(/^bearer:admin-/)]);
    expect((await audit('certificate.revoked', deviceId)).map((e) => e.actor)).toEqual([actor, actor]);
    expect((await audit('profile.stored')).filter((e) => e.detail.name === profile).map((e) => e.actor)).toEqual([actor, actor]);
    expect((await audit('profile.deleted')).find((e) => e.detail.name === profile)?.actor).toBe(actor);
    expect((await audit('revocation.bulk.created')).find((e) => e.detail.jobId === bulk.json().id)?.actor).toBe(actor);
    expect((await audit('token.created', service))[0]?.actor).toBe(actor);
    expect((await audit('certificate.issued', service))[0]?.actor).toBe(actor);
    expect((await audit('certificate.issued', deviceId)).map((e) => e.actor)).toEqual(['enrollment', 'enrollment']); // the device's own requests
    expect((await audit('admin.created', dave.deviceId)).map((e) => [e.actor, e.detail.role])).toEqual([[actor, 'viewer']]);
    expect((await audit('certificate.issued', dave.deviceId))[0]?.actor).toBe(actor);
    expect((await audit('admin.role-changed', dave.deviceId)).map((e) => [e.actor, e.detail])).toEqual([[actor, { from: 'viewer', to: 'operator' }]]);
    expect((await audit('admin.revoked', dave.deviceId)).map((e) => e.actor)).toEqual([actor]);
    expect((await audit('certificate.revoked', dave.deviceId)).map((e) => [e.actor, e.serial])).toEqual([[actor, dave.serial]]);
    expect((await as(bearer(), 'GET', `${routes.adminAuditVerify}`)).json()).toMatchObject({ ok: true });
  });

  it('the broker refuses an admin certificate with CONNACK 5 (not-a-broker-identity), counted on the refusal metric', async () => {
    const admin = await createAdmin(server, uniqueDeviceId('mqtt-admin'), 'owner');
    const metric = async () => {
      const text = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
      return Number(/enrolld_broker_connect_refusals_total\{reason="not-a-broker-identity"\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await metric();
    const outcome = await connectWith(server.running.mqttsPort, server.rootPem, admin);
    expect(outcome).toMatchObject({ ok: false, code: 5 });
    // Counted before the CONNACK is written (admission.ts), so it is there once the client has its answer.
    expect(await metric()).toBe(before + 1);
    // The control: a device of the same server is admitted.
    const device = await enrollDevice(server, uniqueDeviceId('mqtt-dev'));
    const admitted = await connectWith(server.running.mqttsPort, server.rootPem, device);
    expect(admitted.ok).toBe(true);
    if (admitted.ok) await admitted.session.end();
  });
});

describe('ADMIN_BEARER=off after the bootstrap (the first owner made with the bearer token)', () => {
  let first: TestServer;
  let server: TestServer;
  let owner: Awaited<ReturnType<typeof createAdmin>>;

  beforeAll(async () => {
    first = await startTestServer();
    owner = await createAdmin(first, uniqueDeviceId('root-owner'), 'owner');
    await first.halt();
    server = await startTestServer({ restartOf: first, env: { ADMIN_BEARER: 'off', TOKEN_FAILURE_LIMIT: '0' } });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('a bearer request is 401 with a message that says bearer tokens are off; the certificate works', async () => {
    const refused = await adminRequest(server, { bearer: server.adminToken }, 'GET', routes.adminDevices);
    expectProblem(refused, 401, 'unauthorized');
    expect(refused.json().detail).toMatch(/bearer tokens are disabled on this server \(ADMIN_BEARER=off\)/);
    expect((await adminRequest(server, { cert: owner }, 'GET', routes.adminWhoami)).json()).toMatchObject({ actor: `cert:${owner.deviceId}`, role: 'owner' });
    const signIn = await httpsRequest(`${server.apiUrl}/console/sign-in`, server.rootPem, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${encodeURIComponent(server.adminToken)}`,
    });
    expect(signIn.status).toBe(401);
    expect(signIn.text).toContain('ADMIN_BEARER=off');
  });

  it('the last owner with a live certificate can be neither demoted nor revoked (409) until there is another', async () => {
    const me = { cert: owner };
    expectProblem(await adminRequest(server, me, 'PUT', routes.adminAdminRole(owner.deviceId), { role: 'operator' }), 409, 'conflict');
    expectProblem(await adminRequest(server, me, 'POST', routes.adminAdminRevoke(owner.deviceId)), 409, 'conflict');
    expect((await adminRequest(server, me, 'GET', routes.adminWhoami)).status).toBe(200);
    const second = await createAdmin(server, uniqueDeviceId('second-owner'), 'owner', me);
    expect((await adminRequest(server, { cert: second }, 'POST', routes.adminAdminRevoke(owner.deviceId))).status).toBe(200);
    expectProblem(await adminRequest(server, me, 'GET', routes.adminWhoami), 401, 'unauthorized');
  });
});
