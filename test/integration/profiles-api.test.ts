// Profiles and service identities over the admin API on the real composition: the built-in profiles, validation that
// names the offending rule, versions, the delete guard, tokens with a profile, services created, enrolled and
// renewed over REST and EST, and the kind a CSR cannot change.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { problemType, routes, type EnrollResponse, type Profile, type ProfileSpec } from '@enrolld/protocol';
import { readCertificateIdentity } from '@enrolld/core/ca/index.js';
import { profileExtensionValue } from '@enrolld/core/ca/device-profile.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { buildCsr, extension, makeCsr } from '../support/csr-factory.js';
import { certificatesInPkcs7, decodeBase64Body } from '../support/est-support.js';
import { httpsRequest, postJson } from '../support/http.js';
import { credsFrom, renewEst, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

describe('profiles and services', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });
  const admin = (method: string, path: string, body?: unknown) =>
    httpsRequest(server.apiUrl + path, server.rootPem, {
      method,
      headers: { ...auth(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const profileOf = (pem: string) => readCertificateIdentity(new X509Certificate(pem).raw);
  const uniqueName = (prefix: string) => uniqueDeviceId(prefix);
  const silver = (name: string): ProfileSpec => ({
    name,
    kind: 'device',
    lifetimeSeconds: 3600,
    keyTypes: ['ec-p256'],
    acl: [
      { effect: 'allow', action: 'publish', filter: 'devices/{id}/telemetry' },
      { effect: 'allow', action: 'subscribe', filter: 'devices/{id}/commands' },
    ],
  });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('lists the built-in device and service profiles at version 1, and refuses to change or delete them', async () => {
    const res = await admin('GET', routes.adminProfiles);
    expect(res.status).toBe(200);
    const byName = new Map(res.json<{ profiles: Profile[] }>().profiles.map((p) => [p.name, p]));
    expect(byName.get('device')).toMatchObject({ version: 1, kind: 'device', builtin: true, acl: [
      { effect: 'allow', action: 'publish', filter: 'devices/{id}/#' },
      { effect: 'allow', action: 'subscribe', filter: 'devices/{id}/#' },
    ] });
    expect(byName.get('service')).toMatchObject({ version: 1, kind: 'service', builtin: true });
    expect((await admin('PUT', routes.adminProfile('device'), { ...byName.get('device'), version: undefined, builtin: undefined, createdAt: undefined })).status).toBe(403);
    expect((await admin('DELETE', routes.adminProfile('service'))).status).toBe(403);
  });

  it.each([
    ['a malformed filter', { effect: 'allow', action: 'subscribe', filter: 'devices/{id}/a#' }, /acl\[1\] .*"#" must be alone/],
    ['an unknown placeholder', { effect: 'allow', action: 'subscribe', filter: 'groups/{grp}/#' }, /acl\[1\] .*unknown placeholder \{grp\}/],
    ["another device's namespace", { effect: 'allow', action: 'subscribe', filter: 'devices/+/telemetry' }, /acl\[1\] .*another device's namespace/],
    ["another device's namespace through {group}", { effect: 'allow', action: 'subscribe', filter: 'devices/{group}/#' }, /acl\[1\] .*another device's namespace/],
  ] as const)('400 names the offending rule: %s', async (_name, rule, detail) => {
    const spec = { name: uniqueName('bad'), kind: 'device', acl: [{ effect: 'allow', action: 'publish', filter: 'devices/{id}/t' }, rule] };
    const res = await admin('POST', routes.adminProfiles, spec);
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ type: problemType('bad-request'), detail: expect.stringMatching(detail), rules: [{ rule: 1, filter: rule.filter }] });
  });

  it('stores versions: create is 1, update the next, the kind cannot change; a used profile cannot be deleted (409), an unused one can', async () => {
    const name = uniqueName('silver');
    const created = await admin('POST', routes.adminProfiles, silver(name));
    expect(created.status).toBe(201);
    expect(created.json<Profile>()).toMatchObject({ name, version: 1, builtin: false });
    expect((await admin('POST', routes.adminProfiles, silver(name))).status).toBe(409);
    const updated = await admin('PUT', routes.adminProfile(name), { ...silver(name), lifetimeSeconds: 7200 });
    expect(updated.json<Profile>()).toMatchObject({ version: 2, lifetimeSeconds: 7200 });
    expect((await admin('PUT', routes.adminProfile(name), { ...silver(name), kind: 'service', acl: [] })).status).toBe(400);

    // A device enrolled under it: the certificate carries the profile and its current version, and its lifetime.
    const deviceId = uniqueDeviceId('silver');
    const token = (await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId, profile: name }, auth())).json<Array<{ token: string }>>()[0]!.token;
    const csr = await makeCsr({ cn: deviceId });
    const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect(enrolled.status).toBe(201);
    const cert = enrolled.json<EnrollResponse>();
    expect(profileOf(cert.certificate).profile).toEqual({ name, version: 2 });
    const x = new X509Certificate(cert.certificate);
    expect((Date.parse(x.validTo) - Date.parse(x.validFrom)) / 1000 + 1).toBeLessThanOrEqual(7200 + 300); // lifetime + backdate
    expect(x.subjectAltName).toBe(`URI:urn:enrolld:device:${deviceId}`);

    const refused = await admin('DELETE', routes.adminProfile(name));
    expect(refused.status).toBe(409);
    expect(refused.json()).toMatchObject({ type: problemType('conflict'), certificates: 1, tokens: 0 });

    const unused = uniqueName('unused');
    expect((await admin('POST', routes.adminProfiles, silver(unused))).status).toBe(201);
    expect((await admin('DELETE', routes.adminProfile(unused))).status).toBe(204);
    expect((await admin('GET', routes.adminProfile(unused))).status).toBe(404);
  });

  it('a CSR cannot choose its profile: an enrolldProfile extension it asks for is ignored, the token\'s profile is issued', async () => {
    const name = uniqueName('plain');
    await admin('POST', routes.adminProfiles, silver(name));
    const deviceId = uniqueDeviceId('asks-gold');
    const token = (await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId, profile: name }, auth())).json<Array<{ token: string }>>()[0]!.token;
    const csr = buildCsr({ cn: deviceId, extensions: [extension(OID.enrolldProfile, false, profileExtensionValue({ name: 'gold', version: 9 }))] });
    const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect(res.status).toBe(201);
    expect(profileOf(res.json<EnrollResponse>().certificate).profile).toEqual({ name, version: 1 });
  });

  it('a key type the profile does not allow is refused at enrollment (400), the token stays unspent', async () => {
    const name = uniqueName('p256only');
    await admin('POST', routes.adminProfiles, silver(name));
    const deviceId = uniqueDeviceId('p384');
    const token = (await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId, profile: name }, auth())).json<Array<{ token: string }>>()[0]!.token;
    const { generateKeyPairSync } = await import('node:crypto');
    const csr = await makeCsr({ cn: deviceId, key: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey });
    const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ type: problemType('bad-key'), detail: expect.stringContaining('ec-p256') });
    const { rows } = await server.db.pool.query('SELECT used_at FROM bootstrap_tokens WHERE device_id = $1', [deviceId]);
    expect(rows).toEqual([{ used_at: null }]);
  });

  it('a token\'s group follows the identity rule (400 naming the field otherwise), is for device tokens only, and is audited', async () => {
    const bad = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId: uniqueDeviceId(), group: 'Line 7' }, auth());
    expect(bad.status).toBe(400);
    expect(bad.json().detail).toMatch(/group: group must match/);
    const batch = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { prefix: uniqueName('b'), count: 2, group: 'fleet/#' }, auth());
    expect(batch.status).toBe(400);
    const service = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { service: uniqueName('s'), group: 'line-7' }, auth());
    expect(service.status).toBe(400);
    const deviceId = uniqueDeviceId('grouped');
    expect((await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId, group: 'line-7' }, auth())).status).toBe(201);
    const { rows } = await server.db.pool.query(`SELECT detail FROM audit_events WHERE device_id = $1 AND action = 'token.created'`, [deviceId]);
    expect(rows).toEqual([{ detail: expect.objectContaining({ group: 'line-7' }) }]);
  });

  it('an unknown profile at token creation is 400 listing the existing profiles; a profile of the other kind is 400', async () => {
    const res = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId: uniqueDeviceId(), profile: 'platinum' }, auth());
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ detail: expect.stringMatching(/unknown profile "platinum"; existing profiles: .*device.*service/), profiles: expect.arrayContaining(['device', 'service']) });
    const wrongKind = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId: uniqueDeviceId(), profile: 'service' }, auth());
    expect(wrongKind.status).toBe(400);
    expect(wrongKind.json().detail).toMatch(/for services, not devices/);
  });

  it('a service token used at /v1/enroll with a device CSR is 400; the same token enrolls the service; the id never becomes a device', async () => {
    const name = uniqueName('svc');
    const created = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { service: name }, auth());
    expect(created.status).toBe(201);
    const token = created.json<Array<{ token: string }>>()[0]!.token;
    const deviceCsr = await makeCsr({ cn: name, sans: [{ type: 'uri', value: `urn:enrolld:device:${name}` }] });
    const refused = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: deviceCsr.pem });
    expect(refused.status).toBe(400);
    expect(refused.json()).toMatchObject({ type: problemType('identity-mismatch'), detail: expect.stringContaining(`urn:enrolld:service:${name}`) });

    // The CSR asks for nothing (CN only): kind and profile come from the record.
    const csr = await makeCsr({ cn: name });
    const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect(enrolled.status).toBe(201);
    const cert = enrolled.json<EnrollResponse>();
    expect(new X509Certificate(cert.certificate).subjectAltName).toBe(`URI:urn:enrolld:service:${name}`);
    expect(profileOf(cert.certificate).profile).toEqual({ name: 'service', version: 1 });

    const asDevice = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId: name }, auth());
    expect(asDevice.status).toBe(400);
    expect(asDevice.json().detail).toMatch(/already a service; an identity keeps its kind/);
  });

  it('POST /v1/admin/services signs the CSR as a service; the service renews over REST and EST and stays a service', async () => {
    const name = uniqueName('ingest');
    const csr = await makeCsr({ cn: name });
    const res = await postJson(server.apiUrl + routes.adminServices, server.rootPem, { name, csr: csr.pem }, auth());
    expect(res.status).toBe(201);
    const issued = res.json<EnrollResponse>();
    expect(issued.deviceId).toBe(name);
    expect(new X509Certificate(issued.certificate).subjectAltName).toBe(`URI:urn:enrolld:service:${name}`);

    const restCsr = await makeCsr({ cn: name });
    const renewed = await renewRest(server, credsFrom(issued, csr.privateKey), restCsr.pem);
    expect(renewed.status).toBe(201);
    const next = renewed.json<EnrollResponse>();
    expect(new X509Certificate(next.certificate).subjectAltName).toBe(`URI:urn:enrolld:service:${name}`);
    expect(profileOf(next.certificate).profile).toEqual({ name: 'service', version: 1 });

    const estCsr = await makeCsr({ cn: name });
    const est = await renewEst(server, credsFrom(next, restCsr.privateKey), estCsr.der);
    expect(est.status).toBe(200);
    const [estCert] = certificatesInPkcs7(decodeBase64Body(est.text));
    expect(new X509Certificate(estCert!).subjectAltName).toBe(`URI:urn:enrolld:service:${name}`);

    // A renewal CSR naming the service as a device is refused: a service cannot become a device.
    const asDevice = await makeCsr({ cn: name, sans: [{ type: 'uri', value: `urn:enrolld:device:${name}` }] });
    const refused = await renewRest(server, credsFrom(next, restCsr.privateKey), asDevice.pem);
    expect(refused.status).toBe(400);
  });

  it('POST /v1/admin/services refuses a device profile and an unknown profile with 400', async () => {
    const csr = await makeCsr({});
    const device = await postJson(server.apiUrl + routes.adminServices, server.rootPem, { name: uniqueName('s'), profile: 'device', csr: csr.pem }, auth());
    expect(device.status).toBe(400);
    const unknown = await postJson(server.apiUrl + routes.adminServices, server.rootPem, { name: uniqueName('s'), profile: 'nope', csr: csr.pem }, auth());
    expect(unknown.status).toBe(400);
    expect(unknown.json().detail).toMatch(/existing profiles/);
  });
});
