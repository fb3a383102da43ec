// Writes the seed corpus of the fuzz targets (test/fuzz/corpus/<target>/): valid CSRs of every accepted key kind
// (DER, PEM), DER of a certificate and a CRL (*-der.bin, *-pem.txt: the repository ignores *.der and *.pem), and MQTT 3.1.1 streams of the fuzz device covering CONNECT (with will,
// username, persistent session), PUBLISH at each QoS and retained, the QoS 2 flow, SUBSCRIBE/UNSUBSCRIBE inside and
// outside its prefix. `npx tsx test/fuzz/make-corpus.ts` regenerates it; the fuzzers only read it.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { buildCsr, generateTestKey, type TestKeyKind } from '../support/csr-factory.js';
import { createTestPki } from '../support/test-pki.js';
import { FUZZ_DIR } from './engine.js';
import { FUZZ_DEVICE } from './targets/mqtt.js';

function write(target: string, name: string, bytes: Uint8Array | string): void {
  const dir = path.join(FUZZ_DIR, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), bytes);
}

const kinds: Array<[string, TestKeyKind]> = [['p256', 'P-256'], ['p384', 'P-384'], ['ed25519', 'ed25519'], ['rsa2048', { rsa: 2048 }]];
for (const [label, kind] of kinds) {
  const csr = buildCsr({ key: generateTestKey(kind).privateKey, cn: FUZZ_DEVICE, sans: [{ type: 'uri', value: `urn:enrolld:device:${FUZZ_DEVICE}` }, { type: 'dns', value: 'device.example' }, { type: 'ip', value: '192.0.2.1' }] });
  write('csr', `${label}-der.bin`, csr.der);
  if (label === 'p256') write('csr', `${label}-pem.txt`, csr.pem);
  write('der', `csr-${label}-der.bin`, csr.der);
}
const pki = await createTestPki({ name: 'fuzz' });
const device = await pki.device(FUZZ_DEVICE);
write('der', 'device-certificate-der.bin', device.der);
const crl = await pki.issuing.signCrl({ entries: [{ serial: device.serial, revokedAt: new Date(), reasonCode: 1 }], crlNumber: 7n, thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86_400_000) });
write('der', 'crl-der.bin', crl);

const own = (suffix: string) => `devices/${FUZZ_DEVICE}/${suffix}`;
const connect = (extra: Partial<Extract<Packet, { cmd: 'connect' }>> = {}): Packet => ({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: FUZZ_DEVICE, keepalive: 60, ...extra });
const publish = (topic: string, payload: string | Buffer, qos: 0 | 1 | 2, extra: { retain?: boolean; messageId?: number } = {}): Packet =>
  ({ cmd: 'publish', topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain: extra.retain ?? false, dup: false, ...(qos > 0 ? { messageId: extra.messageId ?? 1 } : {}) });
const streams: Record<string, Packet[]> = {
  'connect-only': [connect()],
  'session-flow': [
    connect(),
    { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: own('#'), qos: 1 }] },
    publish(own('telemetry'), 'qos0', 0),
    publish(own('telemetry'), 'qos1', 1, { messageId: 2 }),
    publish(own('telemetry'), 'qos2', 2, { messageId: 3 }),
    { cmd: 'pubrel', messageId: 3 },
    { cmd: 'puback', messageId: 1 },
    { cmd: 'unsubscribe', messageId: 4, unsubscriptions: [own('#')] },
    { cmd: 'pingreq' },
    { cmd: 'disconnect' },
  ],
  'will-and-username': [connect({ username: FUZZ_DEVICE, will: { topic: own('status'), payload: Buffer.from('offline'), qos: 1, retain: true } })],
  'persistent-session': [connect({ clean: false }), { cmd: 'subscribe', messageId: 9, subscriptions: [{ topic: own('cmd/+'), qos: 2 }] }],
  'retained': [connect(), publish(own('state'), 'on', 1, { retain: true, messageId: 5 }), publish(own('state'), '', 0, { retain: true })],
  'foreign-topics': [
    connect(),
    { cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: '#', qos: 0 }, { topic: '$SYS/#', qos: 0 }, { topic: 'devices/other/#', qos: 1 }, { topic: '+/+/state', qos: 2 }] },
    publish('devices/other/cmd', 'forged', 1, { messageId: 6 }),
  ],
  'qos2-held': [connect(), ...[10, 11, 12].map((id) => publish(own('q2'), `m${id}`, 2, { messageId: id }))],
  'large-publish': [connect(), publish(own('blob'), Buffer.alloc(2000, 0x41), 0)],
};
for (const [name, packets] of Object.entries(streams)) write('mqtt', `${name}.bin`, Buffer.concat(packets.map((p) => mqttPacket.generate(p))));
// A PUBLISH whose fixed header announces ~200 MB and sends none of it.
write('mqtt', 'announced-oversize.bin', Buffer.concat([mqttPacket.generate(connect()), Buffer.from([0x30, 0x80, 0x80, 0xe8, 0x5f, 0x00])]));
process.stdout.write('corpus written\n');
