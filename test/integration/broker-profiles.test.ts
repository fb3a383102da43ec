// Tiers on the broker with real TLS and MQTT clients (docs/architecture.md §5, §6): devices enrolled under the example
// profiles bronze, silver and gold (examples/profiles/*.yaml) and a service under the built-in `service` profile, each
// allowed exactly what its certificate's profile says; gold devices of two groups each read only their own group's
// fleet topics ({group}), and a renewal keeps the group; `$share/…` refused with SUBACK 0x80 and counted; a live profile
// update removes the subscriptions it no longer grants and checks later publishes against the new rules, without a
// reconnect.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { routes, type DeviceDetail, type EnrollResponse, type ProfileSpec } from '@enrolld/protocol';
import { readCertificateIdentity } from '@enrolld/core/ca/certificate-reader.js';
import { fromPem } from '@enrolld/core/ca/der.js';
import { profileExtensionValue } from '@enrolld/core/ca/device-profile.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { extension } from '@enrolld/core/ca/x509-encoding.js';
import { readProfileFile } from '../../server/src/cli/profile-command.js';
import { buildCsr, makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { REPO_ROOT } from '../support/processes.js';
import { credsFrom, renewRest, type DeviceCreds } from '../support/renew-support.js';
import { mustConnect, type DeviceSession } from '../support/renew-mqtt.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { waitFor, waitForValue } from '../support/wait-for.js';

/** SUBACK return codes of one SUBSCRIBE (MQTT.js rejects on 0x80 and carries the packet on the error). */
async function subackCodes(session: DeviceSession, filter: string): Promise<number[]> {
  return session.client.subscribeAsync(filter, { qos: 1 }).then(
    (granted) => granted.map((g) => g.qos),
    (error: { packet?: { granted?: Array<number | { reasonCode?: number }> } }) => (error.packet?.granted ?? []).map((g) => (typeof g === 'number' ? g : g.reasonCode ?? -1)),
  );
}

describe('profiles on the broker', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });
  const sessions: DeviceSession[] = [];
  const tier: Record<string, ProfileSpec> = {};

  async function enroll(profile: string, group?: string): Promise<DeviceCreds> {
    const deviceId = uniqueDeviceId(profile);
    const created = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId, profile, group }, auth());
    const token = created.json<Array<{ token: string }>>()[0]!.token;
    const csr = await makeCsr({ cn: deviceId });
    const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${res.text}`);
    return credsFrom(res.json<EnrollResponse>(), csr.privateKey);
  }
  async function service(name: string, profile?: string): Promise<DeviceCreds> {
    const csr = await makeCsr({ cn: name });
    const res = await postJson(server.apiUrl + routes.adminServices, server.rootPem, { name, csr: csr.pem, ...(profile ? { profile } : {}) }, auth());
    if (res.status !== 201) throw new Error(`service failed: ${res.status} ${res.text}`);
    return credsFrom(res.json<EnrollResponse>(), csr.privateKey);
  }
  async function online(creds: DeviceCreds, subscribe: string[] = []): Promise<DeviceSession> {
    const session = await mustConnect(server.running.mqttsPort, server.rootPem, creds, subscribe);
    sessions.push(session);
    return session;
  }
  const metric = async (name: string, labels: string) => {
    const text = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
    const line = text.split('\n').find((l) => l.startsWith(`${name}${labels}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  beforeAll(async () => {
    server = await startTestServer();
    for (const name of ['bronze', 'silver', 'gold']) {
      tier[name] = await readProfileFile(path.join(REPO_ROOT, 'examples', 'profiles', `${name}.yaml`));
      const res = await postJson(server.apiUrl + routes.adminProfiles, server.rootPem, tier[name], auth());
      if (res.status !== 201) throw new Error(`profile ${name}: ${res.status} ${res.text}`);
    }
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.end()));
    await server.stop();
  });

  it('each tier may do what its certificate level says: bronze telemetry only, silver commands and retained state, gold its whole namespace (no fleet topic without a group)', async () => {
    const ingest = await online(await service(uniqueDeviceId('ingest')), ['devices/+/telemetry', 'devices/+/commands/ack']);
    const bronze = await online(await enroll('bronze'));
    const silver = await online(await enroll('silver'));
    const gold = await online(await enroll('gold'));
    const [b, s, g] = [bronze, silver, gold].map((x) => x.client.options.clientId!);

    // bronze: its telemetry reaches the service; commands and the fleet topics are refused.
    await bronze.client.publishAsync(`devices/${b}/telemetry`, 'b-1', { qos: 1 });
    await waitFor(() => ingest.messages.some((m) => m.topic === `devices/${b}/telemetry`), 5000, 'bronze telemetry at the service');
    expect(await subackCodes(bronze, `devices/${b}/commands`)).toEqual([128]);
    expect(await subackCodes(bronze, 'fleet/#')).toEqual([128]);

    // silver: commands from the service arrive and are acknowledged; retained state is written and read back.
    expect(await subackCodes(silver, `devices/${s}/commands`)).toEqual([1]);
    await ingest.client.publishAsync(`devices/${s}/commands`, 'reboot', { qos: 1 });
    await waitFor(() => silver.messages.some((m) => m.topic === `devices/${s}/commands`), 5000, 'the command at silver');
    await silver.client.publishAsync(`devices/${s}/commands/ack`, 'done', { qos: 1 });
    await waitFor(() => ingest.messages.some((m) => m.topic === `devices/${s}/commands/ack`), 5000, 'the ack at the service');
    await silver.client.publishAsync(`devices/${s}/state`, 'on', { qos: 1, retain: true });
    expect(await subackCodes(silver, `devices/${s}/state`)).toEqual([1]);
    await waitFor(() => silver.messages.some((m) => m.topic === `devices/${s}/state` && m.payload.toString() === 'on'), 5000, 'retained state');
    expect(await subackCodes(silver, 'fleet/#')).toEqual([128]);

    // gold without a group: no fleet topic at all ({group} matches nothing); still nobody else's namespace.
    expect(await subackCodes(gold, 'fleet/#')).toEqual([128]);
    expect(await subackCodes(gold, `devices/${g}/config`)).toEqual([1]);
    expect(await subackCodes(gold, `devices/${s}/state`)).toEqual([128]);

    // The service reads every device but cannot publish telemetry for one: the connection is closed.
    expect(await subackCodes(ingest, 'devices/+/cert/renew')).toEqual([128]);
    const closed = ingest.closed;
    ingest.client.publish(`devices/${b}/telemetry`, 'forged', { qos: 0 });
    await closed;
  });

  it('gold devices of two groups each receive their own group\'s fleet topic and are refused the other\'s (SUBACK 0x80); a renewal keeps the group', async () => {
    const announcerProfile = uniqueDeviceId('announcer');
    const spec = { name: announcerProfile, kind: 'service', acl: [{ effect: 'allow', action: 'publish', filter: 'fleet/#' }] };
    expect((await postJson(server.apiUrl + routes.adminProfiles, server.rootPem, spec, auth())).status).toBe(201);
    const announcer = await online(await service(uniqueDeviceId('announcer'), announcerProfile));
    const line7Creds = await enroll('gold', 'line-7');
    const line7 = await online(line7Creds);
    const line8 = await online(await enroll('gold', 'line-8'));

    expect(await subackCodes(line7, 'fleet/line-7/#')).toEqual([1]);
    expect(await subackCodes(line8, 'fleet/line-8/#')).toEqual([1]);
    expect(await subackCodes(line7, 'fleet/line-8/#')).toEqual([128]);
    expect(await subackCodes(line8, 'fleet/line-7/#')).toEqual([128]);
    expect(await subackCodes(line7, 'fleet/+/news')).toEqual([128]);

    // One publisher, in order: each device's own announcement arrives after the other group's was sent, so its absence
    // there is seen after the marker.
    await announcer.client.publishAsync('fleet/line-8/news', 'for line-8 (first)', { qos: 1 });
    await announcer.client.publishAsync('fleet/line-7/news', 'for line-7', { qos: 1 });
    await announcer.client.publishAsync('fleet/line-8/news', 'for line-8', { qos: 1 });
    await waitFor(() => line7.messages.some((m) => m.payload.toString() === 'for line-7'), 5000, 'line-7\'s announcement at line-7');
    await waitFor(() => line8.messages.some((m) => m.payload.toString() === 'for line-8'), 5000, 'line-8\'s announcement at line-8');
    expect(line7.messages.filter((m) => m.topic.startsWith('fleet/')).map((m) => m.payload.toString())).toEqual(['for line-7']);
    expect(line8.messages.filter((m) => m.topic.startsWith('fleet/')).map((m) => m.payload.toString())).toEqual(['for line-8 (first)', 'for line-8']);

    // The device record and the certificate name the group; a renewal keeps it even when the CSR asks for another.
    const detail = await httpsRequest(server.apiUrl + routes.adminDevice(line7Creds.deviceId), server.rootPem, { headers: auth() });
    expect(detail.json<DeviceDetail>().group).toBe('line-7');
    const asks = buildCsr({ cn: line7Creds.deviceId, extensions: [extension(OID.enrolldProfile, false, profileExtensionValue({ name: 'gold', version: 1, group: 'line-8' }))] });
    const renewed = await renewRest(server, line7Creds, asks.pem);
    expect(renewed.status).toBe(201);
    const successor = readCertificateIdentity(fromPem(renewed.json<EnrollResponse>().certificate, 'CERTIFICATE'));
    expect(successor.profile).toEqual({ name: 'gold', version: 1, group: 'line-7' });
  });

  it('$share/… is refused with SUBACK 0x80 for a service as for a device, and counted', async () => {
    const before = await metric('enrolld_broker_acl_denials_total', '{action="subscribe",reason="shared-subscription"}');
    const ingest = await online(await service(uniqueDeviceId('shared')));
    const gold = await online(await enroll('gold'));
    expect(await subackCodes(ingest, '$share/ingest/devices/+/telemetry')).toEqual([128]);
    expect(await subackCodes(gold, `$share/g/devices/${gold.client.options.clientId}/#`)).toEqual([128]);
    expect(await metric('enrolld_broker_acl_denials_total', '{action="subscribe",reason="shared-subscription"}')).toBe(before + 2);
  });

  it('a live profile update removes subscriptions that lost their rights (logged, counted) and checks later publishes, without a reconnect', async () => {
    const name = uniqueDeviceId('live');
    const spec: ProfileSpec = { ...tier.silver!, name };
    expect((await postJson(server.apiUrl + routes.adminProfiles, server.rootPem, spec, auth())).status).toBe(201);
    const commander = await online(await service(uniqueDeviceId('cmd')));
    const device = await online(await enroll(name));
    const witness = await online(await enroll('silver'));
    const [d, w] = [device, witness].map((x) => x.client.options.clientId!);
    expect(await subackCodes(device, `devices/${d}/commands`)).toEqual([1]);
    expect(await subackCodes(witness, `devices/${w}/commands`)).toEqual([1]);
    await commander.client.publishAsync(`devices/${d}/commands`, 'before', { qos: 1 });
    await waitFor(() => device.messages.some((m) => m.payload.toString() === 'before'), 5000, 'a command before the update');
    const removedBefore = await metric('enrolld_broker_subscriptions_removed_total', '');

    // Version 2 keeps telemetry only: no commands, no state.
    const updated = await httpsRequest(server.apiUrl + routes.adminProfile(name), server.rootPem, {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ ...spec, acl: [{ effect: 'allow', action: 'publish', filter: 'devices/{id}/telemetry' }] }),
    });
    expect(updated.status).toBe(200);
    await waitForValue(() => (server.running.broker.profileVersion(name) === 2 ? true : undefined), 5000, 'the broker on version 2');
    await server.running.broker.profilesSettled();
    expect(await metric('enrolld_broker_subscriptions_removed_total', '')).toBe(removedBefore + 1);
    expect(device.client.connected).toBe(true);

    // The same publisher sends to both; the witness's command is the marker that the device's would have arrived.
    await commander.client.publishAsync(`devices/${d}/commands`, 'after', { qos: 1 });
    await commander.client.publishAsync(`devices/${w}/commands`, 'marker', { qos: 1 });
    await waitFor(() => witness.messages.some((m) => m.payload.toString() === 'marker'), 5000, 'the marker at the witness');
    expect(device.messages.filter((m) => m.payload.toString() === 'after')).toEqual([]);

    // Telemetry is still allowed; a publish the new version refuses closes the connection.
    await device.client.publishAsync(`devices/${d}/telemetry`, 't', { qos: 1 });
    expect(device.client.connected).toBe(true);
    const closed = device.closed;
    device.client.publish(`devices/${d}/state`, 'on', { qos: 0 });
    await closed;
  });
});
