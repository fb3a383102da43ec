// Cluster-wide presence (docs/architecture.md §9b) with two broker nodes over one database: the in-process broker of
// `enrolld up` and a standalone `enrolld broker` process. A device connected on either node is connected for the
// console's search (full keyset pages under connected=true/false), its device page, the chart and the by-profile metric;
// after the standalone broker is killed (SIGKILL: no goodbye), its devices stop being connected once its heartbeat
// expires, and the surviving node deletes its rows.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { routes, type FleetCharts, type FleetDeviceDetail, type FleetPage } from '@enrolld/protocol';
import { createPgPresenceStore } from '@enrolld/db';
import { adminGet } from '../support/environments.js';
import { freePort, spawnBroker, type BrokerProcess } from '../support/processes.js';
import { mustConnect, type DeviceSession } from '../support/renew-mqtt.js';
import { enrollDevice, type DeviceCreds } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { waitFor, waitForValue } from '../support/wait-for.js';

// Short on purpose: the killed node must go stale within the test.
const PRESENCE = { BROKER_PRESENCE_FLUSH: '50ms', BROKER_PRESENCE_HEARTBEAT: '200ms', BROKER_PRESENCE_STALE_AFTER: '1s' };

describe('presence across broker nodes', () => {
  let server: TestServer;
  let other: BrokerProcess;
  let otherPort: number;
  const sessions: DeviceSession[] = [];
  const prefix = `${uniqueDeviceId('pres')}-`;
  let devices: DeviceCreds[];

  beforeAll(async () => {
    server = await startTestServer({ env: PRESENCE });
    otherPort = await freePort();
    other = await spawnBroker({ ...PRESENCE, ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, MQTTS_PORT: String(otherPort), LISTEN_HOST: '127.0.0.1' });
    devices = [];
    for (let i = 0; i < 6; i++) devices.push(await enrollDevice(server, `${prefix}${i}`));
  }, 120_000);
  afterAll(async () => {
    for (const s of sessions) await s.end().catch(() => undefined);
    await other?.stop();
    await server?.stop();
  });

  const page = async (query: string) => (await adminGet(server, `${routes.adminFleet}?prefix=${prefix}&${query}`)).json<FleetPage>();
  const ids = (p: FleetPage) => p.devices.map((d) => d.id);
  const id = (i: number) => devices[i]!.deviceId;

  it('a device connected on the other node is connected; connected=true/false pages are full keyset pages', async () => {
    // 0 and 4 on the in-process broker, 2 on the standalone one; 1, 3, 5 stay away.
    sessions.push(await mustConnect(server.running.mqttsPort, server.rootPem, devices[0]!));
    sessions.push(await mustConnect(otherPort, server.rootPem, devices[2]!));
    sessions.push(await mustConnect(server.running.mqttsPort, server.rootPem, devices[4]!));
    await waitFor(async () => ids(await page('connected=true')).length === 3, 10_000, 'three devices connected across both nodes');

    const first = await page('connected=true&limit=2');
    expect(ids(first)).toEqual([id(0), id(2)]);
    expect(first.devices.every((d) => d.connected && d.lastSeen !== null)).toBe(true);
    expect(ids(await page(`connected=true&limit=2&after=${first.next}`))).toEqual([id(4)]);
    const away = await page('connected=false&limit=2');
    expect(ids(away)).toEqual([id(1), id(3)]);
    expect(away.next).toBe(id(3));
    expect(ids(await page(`connected=false&limit=2&after=${away.next}`))).toEqual([id(5)]);

    const detail = (await adminGet(server, routes.adminFleetDevice(id(2)))).json<FleetDeviceDetail>();
    expect(detail).toMatchObject({ id: id(2), connected: true });
    expect(detail.lastSeen).not.toBeNull();

    const charts = (await adminGet(server, routes.adminFleetCharts)).json<FleetCharts>();
    expect(charts.connected.at(-1)!.connected).toBe(3);
    const metrics = (await adminGet(server, routes.metrics)).text;
    expect(metrics).toContain('enrolld_connected_devices_by_profile{profile="device"} 3');
  });

  it('a killed node: its devices stop being connected once its heartbeat is stale, and its rows are cleaned', async () => {
    const nodes = await server.db.pool.query<{ node_id: string }>('SELECT node_id FROM broker_nodes');
    expect(nodes.rows).toHaveLength(2);
    const closed = sessions[1]!.closed;
    other.child.kill('SIGKILL');
    await closed;
    await waitFor(async () => ids(await page('connected=true')).join() === [id(0), id(4)].join(), 10_000, 'the killed node to go stale');
    const gone = (await adminGet(server, routes.adminFleetDevice(id(2)))).json<FleetDeviceDetail>();
    expect(gone.connected).toBe(false);
    expect(gone.lastSeen).not.toBeNull();
    expect(ids(await page('connected=false'))).toEqual([id(1), id(2), id(3), id(5)]);
    // The surviving node's heartbeat deletes the stale node with its rows.
    await waitForValue(async () => {
      const left = await server.db.pool.query<{ node_id: string }>('SELECT node_id FROM broker_nodes');
      return left.rows.length === 1 ? left.rows : undefined;
    }, 10_000, 'the stale node removed');
    const rows = await server.db.pool.query<{ device_id: string }>('SELECT device_id FROM device_presence ORDER BY device_id');
    expect(rows.rows.map((r) => r.device_id)).toEqual([id(0), id(4)]);
  });

  it('the store writes a batch as given: times to the millisecond, quotes in ids, disconnects of that node only', async () => {
    const store = createPgPresenceStore(server.db.pool);
    const node = `${prefix}node-a`;
    const nodeB = `${prefix}node-b`;
    await store.heartbeat(node, 'default', 60_000);
    await store.heartbeat(nodeB, 'default', 60_000);
    const since = new Date('2026-11-30T10:11:12.345Z');
    const at = new Date('2026-11-30T10:11:13.007Z');
    const odd = `${prefix}o"dd\\id,{x}`; // not a device: no last seen, still present
    await store.apply(node, { connected: [{ deviceId: id(5), since }, { deviceId: odd, since }], disconnected: [], seen: [{ deviceId: id(5), at }, { deviceId: odd, at }] });
    await store.apply(nodeB, { connected: [{ deviceId: id(5), since }], disconnected: [], seen: [] });
    const byKey = (a: { device_id: string; node_id: string }, b: { device_id: string; node_id: string }) =>
      `${a.node_id} ${a.device_id}` < `${b.node_id} ${b.device_id}` ? -1 : 1;
    const rows = await server.db.pool.query<{ device_id: string; node_id: string; since: Date }>(
      'SELECT device_id, node_id, since FROM device_presence WHERE node_id IN ($1, $2)', [node, nodeB]);
    expect(rows.rows.sort(byKey)).toEqual([
      { device_id: id(5), node_id: node, since },
      { device_id: odd, node_id: node, since },
      { device_id: id(5), node_id: nodeB, since },
    ].sort(byKey));
    expect((await store.presenceOf([id(5), odd])).get(id(5))).toEqual({ connected: true, lastSeen: at });
    await store.apply(node, { connected: [], disconnected: [id(5), odd], seen: [] });
    const left = await server.db.pool.query<{ node_id: string }>('SELECT node_id FROM device_presence WHERE node_id IN ($1, $2)', [node, nodeB]);
    expect(left.rows).toEqual([{ node_id: nodeB }]);
    await store.removeNode(node);
    await store.removeNode(nodeB);
  });
});
