// A broker serves one environment and trusts only its issuing CA (docs/architecture.md §5, §6). At the real TLS layer,
// with certificates from real enrollments: the broker of `default` (in `enrolld up`), the broker of an environment under
// the same root and the broker of an environment with its own root (`enrolld broker` roles, ENROLLD_ENV) each admit
// their own devices and refuse every other environment's, whether the device sends its intermediate or not. The same
// matrix against Mosquitto 2.0 configured to trust the same thing is the differential oracle; where Mosquitto cannot be
// configured the same way (it has no partial-chain trust) this test shows it and says how it was configured instead.
// Last, a broker named for an environment that does not exist (or was deleted) refuses to start, naming it.
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import { routes, type CreatedToken, type EnrollResponse } from '@enrolld/protocol';
import { loadConfig } from '../../server/src/config.js';
import { createLogger } from '../../server/src/logger.js';
import { buildBroker, type BuiltBroker } from '../../server/src/compose/broker.js';
import { probe, report, type ProbeOutcome } from '../support/broker-harness.js';
import { startMosquitto, type RunningMosquitto } from '../support/broker-mosquitto.js';
import { adminDelete, adminGet, adminPost, certificatesOf, createEnvironment, enrollIn, getBytes } from '../support/environments.js';
import { makeCsr } from '../support/csr-factory.js';
import { postJson } from '../support/http.js';
import { credsFrom } from '../support/renew-support.js';
import { pemOf } from '../support/test-pki.js';
import { ENROLLD_BIN, freePort } from '../support/processes.js';
import type { DeviceCreds } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

interface Env {
  name: string;
  /** Issuing CA then root: what its devices trust, and what its broker presents its server certificate under. */
  chainPem: string;
  rootPem: string;
  tlsDir: string;
  port: number;
  device: DeviceCreds;
}

const admitted = (o: ProbeOutcome) => (o.kind === 'connack' && o.code === 0 ? 'accepted' : 'refused');
const how = (o: ProbeOutcome) => (o.kind === 'connack' ? `connack ${o.code}` : `tls: ${o.error}`);

/** The root's CRL over its issuing CAs (an ARL, RFC 5280 §5), signed with the root key of the test's home: Mosquitto's crlfile needs one per CA in a path. */
async function rootArl(home: string, rootPem: string): Promise<string> {
  x509.cryptoProvider.set(webcrypto);
  const keyDer = Buffer.from((await readFile(path.join(home, 'ca', 'root.key'), 'utf8')).replace(/-----[^-]+-----|\s+/g, ''), 'base64');
  const signingKey = await webcrypto.subtle.importKey('pkcs8', keyDer, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const root = new x509.X509Certificate(rootPem);
  const now = Date.now();
  const arl = await x509.X509CrlGenerator.create({
    issuer: root.subject,
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 24 * 3600_000),
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(root), new x509.Extension('2.5.29.20', false, new Uint8Array([0x02, 0x01, 0x01]))],
  });
  return pemOf('X509 CRL', Buffer.from(arl.rawData));
}

describe('one broker per environment, each trusting only its issuing CA', () => {
  let server: TestServer;
  const brokers: BuiltBroker[] = [];
  const mosquittos: RunningMosquitto[] = [];
  let envs: Env[];

  async function startBroker(environment: string): Promise<{ broker: BuiltBroker; port: number }> {
    const config = loadConfig({
      ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, MQTTS_PORT: '0', BROKER_HTTP_PORT: '0', LISTEN_HOST: '127.0.0.1', ENROLLD_ENV: environment, LOG_LEVEL: 'silent',
    });
    const broker = await buildBroker(config, createLogger(config.logLevel));
    brokers.push(broker);
    return { broker, port: (await broker.listen()).port };
  }

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
    const dev = `dev-${randomBytes(3).toString('hex')}`;
    const lab = `lab-${randomBytes(3).toString('hex')}`;
    const devRecord = await createEnvironment(server, dev);
    const labRecord = await createEnvironment(server, lab, { ownRoot: true });
    const rootOf = (chain: string) => pemOf('CERTIFICATE', certificatesOf(chain)[1]!.raw);
    envs = [
      { name: 'default', chainPem: server.chainPem, rootPem: server.rootPem, tlsDir: path.join(server.home, 'tls'), port: server.running.mqttsPort, device: await enrollIn(server, 'default', uniqueDeviceId('prod')) },
      { name: dev, chainPem: devRecord.chain, rootPem: rootOf(devRecord.chain), tlsDir: path.join(server.home, 'envs', dev, 'tls'), port: (await startBroker(dev)).port, device: await enrollIn(server, dev, uniqueDeviceId('dev')) },
      { name: lab, chainPem: labRecord.chain, rootPem: rootOf(labRecord.chain), tlsDir: path.join(server.home, 'envs', lab, 'tls'), port: (await startBroker(lab)).port, device: await enrollIn(server, lab, uniqueDeviceId('lab')) },
    ];
  });
  afterAll(async () => {
    for (const m of mosquittos) await m.stop();
    for (const b of brokers) await b.stop();
    await server?.stop();
  });

  /**
   * Every device against every broker, sending its leaf alone and with its environment's issuing CA. The client trusts
   * the broker it dials (that broker's environment chain), so the only question asked is whether the broker admits it.
   */
  async function matrix(portOf: (env: Env) => number) {
    const rows: Array<{ device: string; broker: string; sends: string; outcome: string; detail: string }> = [];
    for (const broker of envs) {
      for (const owner of envs) {
        for (const sends of ['leaf', 'leaf+issuing'] as const) {
          const cert = sends === 'leaf' ? owner.device.certPem : owner.device.clientChainPem;
          const outcome = await probe(portOf(broker), { key: owner.device.keyPem, cert, ca: broker.chainPem }, owner.device.deviceId);
          rows.push({ device: owner.name, broker: broker.name, sends, outcome: admitted(outcome), detail: how(outcome) });
        }
      }
    }
    return rows;
  }

  it('each broker admits its own devices and refuses every other environment at the TLS handshake, with or without the intermediate', async () => {
    const rows = await matrix((env) => env.port);
    const wrong = rows.filter((r) => r.outcome !== (r.device === r.broker ? 'accepted' : 'refused'));
    report('ENV-broker-matrix', wrong.length === 0, { cases: rows.length, wrong: wrong.length, rows });
    expect(wrong).toEqual([]);
    // A refusal is the TLS layer's, never an MQTT session that got as far as CONNECT.
    expect(rows.filter((r) => r.outcome === 'refused' && !r.detail.startsWith('tls:'))).toEqual([]);
    // The default broker counted the dev device that sent its intermediate (it verifies to the shared root) as another
    // issuing CA's; without the intermediate OpenSSL finds no path at all.
    const metrics = (await getBytes(server, routes.metrics)).text;
    const otherIssuer = Number(/enrolld_broker_connect_refusals_total\{reason="other-issuer"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(otherIssuer).toBe(1);
  });

  describe('differential: the same matrix against Mosquitto 2.0 configured to trust the same thing', () => {
    beforeAll(async () => {
      const arl = await rootArl(server.home, server.rootPem);
      for (const env of envs) {
        const [serverCertPem, serverKeyPem] = await Promise.all([readFile(path.join(env.tlsDir, 'server.pem'), 'utf8'), readFile(path.join(env.tlsDir, 'server.key'), 'utf8')]);
        // Its own root: cafile is its chain, exactly what our broker trusts. Under the shared root Mosquitto cannot
        // trust an intermediate alone (see the next test), so cafile holds the shared root and the environment's issuing
        // CA, and crlfile the root's ARL and that environment's CRL only: with a crlfile Mosquitto wants a CRL for every
        // CA in a path, so a path through another environment's issuing CA fails for want of its CRL.
        const ownRoot = env.rootPem !== server.rootPem;
        const crl = ownRoot ? undefined : pemOf('X509 CRL', (await getBytes(server, `${routes.crl}?env=${env.name}`)).body);
        mosquittos.push(await startMosquitto({ port: await freePort(), caPem: env.chainPem, serverCertPem, serverKeyPem, ...(crl ? { crlPem: arl + crl } : {}) }));
      }
    });

    it('both brokers admit and refuse the same devices in every environment', async () => {
      const ours = await matrix((env) => env.port);
      const theirs = await matrix((env) => mosquittos[envs.indexOf(env)]!.port);
      const rows = ours.map((r, i) => ({ ...r, mosquitto: theirs[i]!.outcome, mosquittoDetail: theirs[i]!.detail }));
      const disagreements = rows.filter((r) => r.outcome !== r.mosquitto);
      report('ENV-mosquitto-differential', disagreements.length === 0, { cases: rows.length, disagreements: disagreements.length, rows });
      expect(disagreements).toEqual([]);
      expect(rows.filter((r) => r.device === r.broker).map((r) => r.mosquitto)).toEqual(Array(6).fill('accepted'));
    });

    it('where Mosquitto differs: with only the issuing CA in cafile (what our broker pins) it refuses even its own devices', async () => {
      const dev = envs[1]!;
      const [serverCertPem, serverKeyPem] = await Promise.all([readFile(path.join(dev.tlsDir, 'server.pem'), 'utf8'), readFile(path.join(dev.tlsDir, 'server.key'), 'utf8')]);
      const issuingOnly = pemOf('CERTIFICATE', certificatesOf(dev.chainPem)[0]!.raw);
      const mosquitto = await startMosquitto({ port: await freePort(), caPem: issuingOnly, serverCertPem, serverKeyPem });
      mosquittos.push(mosquitto);
      const own = await probe(mosquitto.port, { key: dev.device.keyPem, cert: dev.device.clientChainPem, ca: dev.chainPem }, dev.device.deviceId);
      // No partial-chain trust in Mosquitto 2.0: the chain must reach a self-signed root in cafile.
      expect(admitted(own)).toBe('refused');
      expect(admitted(await probe(dev.port, { key: dev.device.keyPem, cert: dev.device.clientChainPem, ca: dev.chainPem }, dev.device.deviceId))).toBe('accepted');
    });
  });

  describe('a broker for an environment that does not exist refuses to start, naming it', () => {
    /** `enrolld broker` as a real process: its exit code and what it printed. */
    function brokerProcess(environment: string): Promise<{ code: number; output: string }> {
      const env = {
        PATH: process.env.PATH ?? '', ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, MQTTS_PORT: '0', BROKER_HTTP_PORT: '0', LISTEN_HOST: '127.0.0.1', ENROLLD_ENV: environment, LOG_LEVEL: 'info',
      };
      return new Promise((resolve) => {
        execFile(process.execPath, [ENROLLD_BIN, 'broker'], { env, timeout: 60_000 }, (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
        });
      });
    }

    it('unknown: `enrolld broker` exits 1 with a message naming ENROLLD_ENV', async () => {
      const result = await brokerProcess('nowhere');
      expect(result.code).toBe(1);
      expect(result.output).toContain('ENROLLD_ENV=nowhere: there is no environment "nowhere"');
    });

    it('deleted: the same, saying it was deleted', async () => {
      const gone = `gone-${randomBytes(3).toString('hex')}`;
      await createEnvironment(server, gone);
      expect((await adminDelete(server, routes.adminEnvironment(gone))).status).toBe(204);
      await expect(startBroker(gone)).rejects.toThrow(`ENROLLD_ENV=${gone}: there is no environment "${gone}" (it was deleted)`);
      // Control: a live one starts.
      const live = `live-${randomBytes(3).toString('hex')}`;
      await createEnvironment(server, live);
      expect((await startBroker(live)).port).toBeGreaterThan(0);
      expect((await adminPost(server, routes.adminEnvironments, { name: gone })).status).toBe(409);
    });
  });

  it('a broker reads the profile a certificate names in its own environment: one made only in dev admits on dev\'s broker', async () => {
    const dev = envs[1]!;
    const profile = { name: `only-${dev.name}`, kind: 'device', acl: [{ effect: 'allow', action: 'publish', filter: 'devices/{id}/#' }] };
    expect((await adminPost(server, `${routes.adminProfiles}?env=${dev.name}`, profile)).status).toBe(201);
    const deviceId = uniqueDeviceId('devprofile');
    const token = await adminPost(server, routes.adminTokens, { deviceId, profile: profile.name, environment: dev.name });
    expect(token.status).toBe(201);
    const csr = await makeCsr({ cn: deviceId });
    const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token: token.json<CreatedToken[]>()[0]!.token, csr: csr.pem });
    expect(enrolled.status).toBe(201);
    const device = credsFrom(enrolled.json<EnrollResponse>(), csr.privateKey);
    // Known in dev only: the dev broker admits it (the broker of `default` would answer CONNACK 5 unknown-profile).
    expect(how(await probe(dev.port, { key: device.keyPem, cert: device.clientChainPem, ca: dev.chainPem }, deviceId))).toBe('connack 0');
    expect((await adminGet(server, `${routes.adminProfiles}/${profile.name}`)).status).toBe(404);
  });

  it('the environment brokers present a server certificate of their own issuing CA', async () => {
    for (const env of envs) {
      const [leaf] = certificatesOf(await readFile(path.join(env.tlsDir, 'server.pem'), 'utf8'));
      const issuing = certificatesOf(env.chainPem)[0]!;
      expect({ env: env.name, signed: leaf!.checkIssued(issuing) && leaf!.verify(issuing.publicKey) }).toEqual({ env: env.name, signed: true });
      expect(new X509Certificate(leaf!.raw).subjectAltName).toContain('DNS:localhost');
    }
  });
});
