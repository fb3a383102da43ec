// The console across processes (docs/architecture.md §9b): a standalone `enrolld broker` process refuses a revoked
// device and the refusal, with its reason, reaches the live-events stream of the API in this process (read by a real
// HTTP client, as a browser's EventSource does); an enrollment through a second API composition reaches the first's
// stream; the connected chart is the same on both APIs, the second one included though it never sampled; and last
// seen goes with its device.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPgPresenceStore } from '@enrolld/db';
import { routes, type FleetCharts } from '@enrolld/protocol';
import { loadConfig } from '../../server/src/config.js';
import { buildApi, type BuiltApi } from '../../server/src/compose/api.js';
import { createLogger } from '../../server/src/logger.js';
import { adminHeaders } from '../support/environments.js';
import { httpsRequest, postJson } from '../support/http.js';
import { freePort, spawnBroker, type BrokerProcess } from '../support/processes.js';
import { connectWith } from '../support/renew-mqtt.js';
import { enrollDevice, type DeviceCreds } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { openEventStream, type EventStream } from '../support/sse.js';
import { waitFor, waitForValue } from '../support/wait-for.js';

describe('the console across processes', () => {
  let server: TestServer;
  let broker: BrokerProcess;
  let brokerPort: number;
  let second: BuiltApi;
  let secondUrl: string;
  let stream: EventStream;

  beforeAll(async () => {
    server = await startTestServer();
    brokerPort = await freePort();
    broker = await spawnBroker({ ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, MQTTS_PORT: String(brokerPort), LISTEN_HOST: '127.0.0.1' });
    const config = loadConfig({ ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, HTTPS_PORT: '0', LISTEN_HOST: '127.0.0.1', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' });
    second = await buildApi(config, createLogger(config.logLevel));
    secondUrl = (await second.listen()).url;
    stream = await openEventStream(server.apiUrl + routes.adminEvents, server.rootPem, adminHeaders(server));
  }, 120_000);
  afterAll(async () => {
    stream?.close();
    await broker?.stop();
    await second?.stop();
    await server?.stop();
  });

  const heard = (type: string, deviceId: string) => stream.events.filter((e) => e.event === type && e.data.deviceId === deviceId);

  it('a revoked device refused by another broker process shows on this API, with its reason, once', async () => {
    const device: DeviceCreds = await enrollDevice(server, uniqueDeviceId('cl-rev'));
    const revoked = await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'keyCompromise' }, adminHeaders(server));
    expect(revoked.status).toBe(200);
    // The broker process learns the revocation through NOTIFY; until then it may still admit the device.
    await waitFor(async () => {
      const attempt = await connectWith(brokerPort, server.rootPem, device);
      if (attempt.ok) await attempt.session.end();
      return !attempt.ok;
    }, 20_000, 'the broker process to refuse the revoked device');
    await waitFor(() => heard('refused', device.deviceId).length > 0, 20_000, 'the refusal on the first API stream');
    expect(heard('refused', device.deviceId)[0]!.data).toMatchObject({ type: 'refused', deviceId: device.deviceId, serial: device.serial, reason: 'revoked' });
    // Enrolled and revoked happened in this process: shown once although the bus brought them back too. A marker
    // from the other API, sent after them, proves they had time to come back.
    const marker = await enrollDevice({ ...server, apiUrl: secondUrl }, uniqueDeviceId('cl-mark'));
    await waitFor(() => heard('enrolled', marker.deviceId).length > 0, 20_000, 'the marker enrollment');
    expect(heard('enrolled', device.deviceId)).toHaveLength(1);
    expect(heard('revoked', device.deviceId)).toHaveLength(1);
  });

  it('an enrollment through the second API composition shows on the first API stream', async () => {
    const device = await enrollDevice({ ...server, apiUrl: secondUrl }, uniqueDeviceId('cl-enr'));
    await waitFor(() => heard('enrolled', device.deviceId).length > 0, 20_000, 'the enrollment on the first API stream');
    expect(heard('enrolled', device.deviceId)[0]!.data).toMatchObject({ type: 'enrolled', deviceId: device.deviceId, serial: device.serial });
  });

  it('both APIs draw the same connected history from Postgres', async () => {
    const charts = async (url: string) =>
      (await httpsRequest(url + routes.adminFleetCharts, server.rootPem, { headers: adminHeaders(server) })).json<FleetCharts>();
    // Every API offers a sample on start; the stored history (all but the live last point) is the same on both.
    const history = await waitForValue(async () => {
      const [a, b] = await Promise.all([charts(server.apiUrl), charts(secondUrl)]);
      const stored = (c: FleetCharts) => JSON.stringify(c.connected.slice(0, -1));
      return a.connected.length > 1 && stored(a) === stored(b) ? a.connected.slice(0, -1) : undefined;
    }, 20_000, 'a shared history');
    const rows = await server.db.pool.query<{ bucket: Date; sampled_at: Date; connected: number }>('SELECT bucket, sampled_at, connected FROM connected_samples ORDER BY bucket');
    expect(history).toEqual(rows.rows.map((r) => ({ at: r.sampled_at.getTime(), connected: r.connected })));
    // One row per 5 s bucket, whichever API wrote it.
    expect(rows.rows.every((r) => r.bucket.getTime() % 5000 === 0)).toBe(true);
  });

  it("a deleted device's last seen goes with it; a batch naming an unknown device still applies", async () => {
    const presence = createPgPresenceStore(server.db.pool);
    const id = uniqueDeviceId('cl-del');
    await server.db.pool.query('INSERT INTO devices (id) VALUES ($1)', [id]);
    const node = `node-${id}`;
    await presence.heartbeat(node, 'default', 60_000);
    const at = new Date();
    await presence.apply(node, { connected: [], disconnected: [id, 'never-enrolled'], seen: [{ deviceId: id, at }, { deviceId: 'never-enrolled', at }] });
    expect((await presence.presenceOf([id, 'never-enrolled'])).get(id)!.lastSeen).toEqual(at);
    expect((await presence.presenceOf(['never-enrolled'])).get('never-enrolled')!.lastSeen).toBeNull();
    await server.db.pool.query('DELETE FROM devices WHERE id = $1', [id]);
    const left = await server.db.pool.query('SELECT 1 FROM device_last_seen WHERE device_id = $1', [id]);
    expect(left.rowCount).toBe(0);
    await presence.removeNode(node);
  });
});
