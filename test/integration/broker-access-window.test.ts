// Access windows on the real composition with real TLS and MQTT clients and the real clock (docs/architecture.md §6):
// a session live when its profile's window ends is cut then, the reconnect gets CONNACK 5 (outside-window, counted);
// renewal outside the window still works over REST and EST; a profile update that closes the window closes its live
// sessions at once; a schedule that cannot be parsed is 400 naming the field.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { problemType, routes, type EnrollResponse, type ProfileSpec } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { certificatesInPkcs7, decodeBase64Body } from '../support/est-support.js';
import { httpsRequest, postJson } from '../support/http.js';
import { refusalOf } from '../support/refusal.js';
import { connectWith, mustConnect } from '../support/renew-mqtt.js';
import { credsFrom, enrollDevice, renewEst, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { waitForValue } from '../support/wait-for.js';

const OWN_NAMESPACE: ProfileSpec['acl'] = [
  { effect: 'allow', action: 'publish', filter: 'devices/{id}/#' },
  { effect: 'allow', action: 'subscribe', filter: 'devices/{id}/#' },
];

describe('access windows on the broker', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });
  const admin = (method: string, path: string, body: unknown) =>
    httpsRequest(server.apiUrl + path, server.rootPem, { method, headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const metric = async (series: string) => {
    const text = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const REFUSED = 'enrolld_broker_connect_refusals_total{reason="outside-window"}';
  const CLOSED = 'enrolld_broker_sessions_outside_window_total';

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('a live session is cut when the window ends, the reconnect gets CONNACK 5 (counted), and the device still renews over REST and EST', async () => {
    // The window ends a few seconds from now: long enough to enroll and connect on a busy machine.
    const until = new Date(Math.ceil((Date.now() + 6000) / 1000) * 1000);
    const name = uniqueDeviceId('shift');
    expect((await admin('POST', routes.adminProfiles, { name, kind: 'device', acl: OWN_NAMESPACE, access: { until: until.toISOString() } })).status).toBe(201);
    const creds = await enrollDevice(server, uniqueDeviceId('shift'), { profile: name });
    const [refusedBefore, closedBefore] = [await metric(REFUSED), await metric(CLOSED)];

    const session = await mustConnect(server.running.mqttsPort, server.rootPem, creds);
    expect(Date.now()).toBeLessThan(until.getTime()); // connected inside the window
    const closedAt = performance.timeOrigin + (await session.closed);
    expect(closedAt).toBeGreaterThanOrEqual(until.getTime()); // never before its end; how soon after: npm run bench:window
    expect(await metric(CLOSED)).toBe(closedBefore + 1);

    const again = await connectWith(server.running.mqttsPort, server.rootPem, creds);
    if (again.ok) await again.session.end();
    expect(refusalOf(again)).toBe('connack 5');
    expect(await metric(REFUSED)).toBe(refusedBefore + 1);

    // Renewal is not bound by the window: a device parked outside it must not expire.
    const restCsr = await makeCsr({ cn: creds.deviceId });
    const renewed = await renewRest(server, creds, restCsr.pem);
    expect(renewed.status).toBe(201);
    const successor = credsFrom(renewed.json<EnrollResponse>(), restCsr.privateKey);
    const estCsr = await makeCsr({ cn: creds.deviceId });
    const est = await renewEst(server, successor, estCsr.der);
    expect(est.status).toBe(200);
    const [estCert] = certificatesInPkcs7(decodeBase64Body(est.text));
    expect(new X509Certificate(estCert!).subject).toBe(`CN=${creds.deviceId}`);
    // The successor is the profile's too: refused at CONNECT while the window stays closed.
    expect(refusalOf(await connectWith(server.running.mqttsPort, server.rootPem, successor))).toBe('connack 5');
  });

  it('a profile update that closes the window closes its live sessions at once; one that opens it lets them back', async () => {
    const name = uniqueDeviceId('hours');
    const spec = { name, kind: 'device', acl: OWN_NAMESPACE };
    expect((await admin('POST', routes.adminProfiles, spec)).status).toBe(201);
    const creds = await enrollDevice(server, uniqueDeviceId('hours'), { profile: name });
    const session = await mustConnect(server.running.mqttsPort, server.rootPem, creds);
    const closedBefore = await metric(CLOSED);

    // A window that ended yesterday.
    const ended = new Date(Date.now() - 86_400_000).toISOString();
    expect((await admin('PUT', routes.adminProfile(name), { ...spec, access: { until: ended } })).status).toBe(200);
    await session.closed;
    expect(await metric(CLOSED)).toBe(closedBefore + 1);
    expect(refusalOf(await connectWith(server.running.mqttsPort, server.rootPem, creds))).toBe('connack 5');

    // Every day, all day: admitted again once the broker holds the new version.
    expect((await admin('PUT', routes.adminProfile(name), {
      ...spec, access: { timezone: 'Europe/Berlin', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', until: '24:00' }] },
    })).status).toBe(200);
    await waitForValue(() => (server.running.broker.profileVersion(name) === 3 ? true : undefined), 5000, 'the broker on version 3');
    const back = await mustConnect(server.running.mqttsPort, server.rootPem, creds);
    expect(back.client.connected).toBe(true);
    await back.end();
  });

  it.each([
    ['a time of day that is not HH:MM', { timezone: 'Europe/Berlin', weekly: [{ days: ['mon'], from: '8am', until: '18:00' }] }, /access\.weekly\[0\]\.from: a time of day is HH:MM/],
    ['an unknown time zone', { timezone: 'Europe/Atlantis', weekly: [{ days: ['mon'], from: '08:00', until: '18:00' }] }, /access\.timezone: unknown time zone/],
    ['an unknown day', { timezone: 'UTC', weekly: [{ days: ['mon', 'funday'], from: '08:00', until: '18:00' }] }, /access\.weekly\[0\]\.days\[1\]/],
    ['a date without its offset', { until: '2025-06-30T18:00:00' }, /access\.until: an ISO 8601 date and time with its offset/],
  ])('%s is 400 naming the field', async (_name, access, detail) => {
    const res = await admin('POST', routes.adminProfiles, { name: uniqueDeviceId('bad'), kind: 'device', acl: OWN_NAMESPACE, access });
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ type: problemType('bad-request'), detail: expect.stringMatching(detail) });
  });
});
