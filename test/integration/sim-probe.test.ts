// The simulator's old-certificate probe (device-sim/src/mqtt-transport.ts `probe`): one CONNECT on a bare TLS socket
// against the real broker. It must answer like the MQTT.js connect it replaces: accepted on CONNACK 0, and a refusal
// classified the same way (CONNACK 5 = revoked), so the soak's old-certificate figures keep their meaning.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPrivateKey } from 'node:crypto';
import { createMqttTransport } from '../../device-sim/src/mqtt-transport.js';
import { toSimError } from '../../device-sim/src/sim-error.js';
import type { DeviceCredentials } from '../../device-sim/src/transport.js';
import { insertDevice, report, startTestBroker, type TestBroker } from '../support/broker-harness.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { createTestPki, deviceIdFor, type DeviceCert, type TestPki } from '../support/test-pki.js';

describe('simulator probe against the broker', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let broker: TestBroker;

  beforeAll(async () => {
    db = await createTestDatabase();
    pki = await createTestPki();
    broker = await startTestBroker(db.url, db.pool, pki);
  });
  afterAll(async () => {
    await broker?.stop();
    await db?.drop();
  });

  const credsOf = (device: DeviceCert): DeviceCredentials => ({
    deviceId: device.deviceId,
    serial: device.serial,
    certificatePem: device.certPem,
    chainPem: [pki.issuing.certPem, pki.root.certPem],
    notBefore: device.notBefore.getTime(),
    notAfter: device.notAfter.getTime(),
    privateKey: createPrivateKey(device.keyPem),
  });

  it('resolves on CONNACK 0 and rejects a revoked certificate with the same error as the MQTT.js connect (connack 5, revoked)', async () => {
    const transport = createMqttTransport({ brokerUrls: [new URL(`mqtts://127.0.0.1:${broker.port}`)], ca: pki.caChainPem, sendChain: true, connectTimeoutMs: 10_000, keepaliveSeconds: 30 });
    const device = await pki.device(deviceIdFor('probe'));
    await insertDevice(db.pool, device);
    await broker.broker.resync();
    const creds = credsOf(device);
    const accepted = await transport.probe(device.deviceId, creds).then(() => 'accepted', (e: unknown) => toSimError(e, 'probe').kind);

    await db.pool.query(`UPDATE certificates SET revoked_at = now(), revocation_reason = 1 WHERE serial = $1`, [device.serial]);
    await broker.broker.resync();
    const refusal = await transport.probe(device.deviceId, creds).then(() => undefined, (e: unknown) => toSimError(e, 'probe'));
    const viaConnect = await transport.connect(device.deviceId, creds, { onMessage: () => {}, onClose: () => {} }).then(
      (session) => (session.destroy(), undefined),
      (e: unknown) => toSimError(e, 'probe'),
    );
    report('SIM-probe', accepted === 'accepted' && refusal?.kind === 'connect-connack-5' && refusal.revoked, {
      accepted, refused: refusal?.kind ?? null, revoked: refusal?.revoked ?? null, viaConnect: viaConnect?.kind ?? null,
    });
    expect(accepted).toBe('accepted');
    expect(refusal).toEqual(expect.objectContaining({ kind: 'connect-connack-5', revoked: true }));
    expect(viaConnect).toEqual(expect.objectContaining({ kind: refusal?.kind, revoked: true }));
  });
});
