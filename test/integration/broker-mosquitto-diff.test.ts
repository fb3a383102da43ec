// Differential oracle (BRK-03): the same certificates and CRL against our broker and
// against Mosquitto 2.0 with require_certificate, cafile and crlfile. Both must admit and refuse the same devices.
// Where Mosquitto closes at the handshake, ours may answer CONNACK 5 instead (a revoked or expired certificate of
// ours, docs/architecture.md §7): a refusal either way.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { asCa, createIntermediateCa, createRootCa, createTestPki, deviceIdFor, KeyUsage, pemOf, SERVER_AUTH, type DeviceCert, type TestPki } from '../support/test-pki.js';
import { insertDevice, probe, report, revocationServiceFor, startTestBroker, type ProbeOutcome, type TestBroker } from '../support/broker-harness.js';
import { startMosquitto, type RunningMosquitto } from '../support/broker-mosquitto.js';
import { freePort } from '../support/processes.js';

describe('differential: our broker vs Mosquitto on the same certificate corpus', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let broker: TestBroker;
  let mosquitto: RunningMosquitto;
  const corpus: Array<{ name: string; device: DeviceCert; cert: string }> = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pki = await createTestPki();
    const id = deviceIdFor('diff');
    const now = Date.now();
    const other = await createRootCa(`other ${id}`);
    const otherIssuing = await createIntermediateCa(other, pki.issuing.name);
    const sibling = await createIntermediateCa(pki.root, `sibling ${id}`);
    const caLeaf = await pki.device(deviceIdFor('caleaf'), { isCa: true });
    const rogue = await asCa(`rogue ${id}`, caLeaf);
    const add = (name: string, device: DeviceCert, cert = device.chainPem) => corpus.push({ name, device, cert });
    add('valid', await pki.device(deviceIdFor('valid')));
    await insertDevice(db.pool, corpus.at(-1)!.device);
    add('validLeafOnly', await pki.device(deviceIdFor('leaf')), undefined);
    await insertDevice(db.pool, corpus.at(-1)!.device);
    corpus.at(-1)!.cert = corpus.at(-1)!.device.certPem;
    add('expired', await pki.device(deviceIdFor('exp'), { notBefore: new Date(now - 7200_000), notAfter: new Date(now - 1000) }));
    add('notYetValid', await pki.device(deviceIdFor('nyv'), { notBefore: new Date(now + 600_000), notAfter: new Date(now + 7200_000) }));
    const fromOther = await pki.deviceFrom(otherIssuing, deviceIdFor('other'));
    add('otherCaSameIssuerName', fromOther);
    const selfSigned = await pki.deviceFrom(await createRootCa(id), id);
    add('selfSigned', selfSigned, selfSigned.certPem);
    add('siblingIssuingCa', await pki.deviceFrom(sibling, deviceIdFor('sib')));
    add('serverAuthOnly', await pki.device(deviceIdFor('sa'), { eku: [SERVER_AUTH] }));
    add('noDigitalSignature', await pki.device(deviceIdFor('ku'), { keyUsage: KeyUsage.keyAgreement }));
    add('caTrueLeaf', caLeaf);
    const fromRogue = await pki.deviceFrom(rogue, deviceIdFor('rogue'));
    add('issuedByCaTrueLeaf', fromRogue, fromRogue.certPem + caLeaf.certPem + pki.issuing.certPem);
    add('unknownCriticalExtension', await pki.device(deviceIdFor('crit'), { unknownCriticalExtension: true }));
    const revoked = await pki.device(deviceIdFor('revoked'));
    await insertDevice(db.pool, revoked);
    add('revoked', revoked);

    const service = revocationServiceFor(db.pool, pki);
    await service.revokeDevice(revoked.deviceId, { reason: 'keyCompromise', actor: 'diff' });
    const crl = await service.currentCrl();
    broker = await startTestBroker(db.url, db.pool, pki);
    mosquitto = await startMosquitto({
      port: await freePort(),
      caPem: pki.caChainPem,
      serverCertPem: pki.server.chainPem,
      serverKeyPem: pki.server.keyPem,
      crlPem: pemOf('X509 CRL', crl.der) + pki.rootArlPem,
    });
  });
  afterAll(async () => {
    await mosquitto?.stop();
    await broker?.stop();
    await db?.drop();
  });

  it('both brokers admit and refuse the same devices, except the device profile only ours checks', async () => {
    const admission = (o: ProbeOutcome) => (o.kind === 'connack' && o.code === 0 ? 'accepted' : 'refused');
    const rows: Array<{ name: string; ours: string; mosquitto: string; oursDetail: string }> = [];
    for (const { name, device, cert } of corpus) {
      const creds = { key: device.keyPem, cert, ca: pki.caChainPem };
      const ours = await probe(broker.port, creds, device.deviceId);
      const theirs = await probe(mosquitto.port, creds, device.deviceId);
      rows.push({ name, ours: admission(ours), mosquitto: admission(theirs), oursDetail: ours.kind === 'connack' ? `connack ${ours.code}` : ours.error });
    }
    const disagreements = rows.filter((r) => r.ours !== r.mosquitto);
    // Mosquitto has no device profile: KU digitalSignature and CA:FALSE (docs/architecture.md §5) are ours, at CONNECT.
    const profileOnly = ['caTrueLeaf', 'noDigitalSignature'];
    const unexpected = disagreements.filter((r) => !(profileOnly.includes(r.name) && r.ours === 'refused' && r.oursDetail === 'connack 5'));
    report('BRK-03-differential', unexpected.length === 0, { cases: rows.length, disagreements: disagreements.length, unexpected: unexpected.length, rows });
    expect(unexpected).toEqual([]);
    expect(disagreements.map((r) => r.name).sort()).toEqual(profileOnly);
    expect(rows.find((r) => r.name === 'valid')).toMatchObject({ ours: 'accepted', mosquitto: 'accepted' });
    expect(rows.find((r) => r.name === 'revoked')).toMatchObject({ ours: 'refused', mosquitto: 'refused' });
  });
});
