// Environments end to end on the real `enrolld up` (docs/architecture.md §5): create (under the shared root and with
// --own-root), list, show, delete with its 409 and 403, the audit rows, and every route that takes an environment
// refusing one that does not exist; then issuance per environment: a token decides the issuing CA, renewal (REST and
// EST) keeps it, profiles are per environment, each issuing CA has its own CRL, and the fleet search and the bulk
// selector filter by environment. The CLI commands run as the compiled binary against the same server.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { environmentListResponseSchema, problemType, routes, type AuditListResponse, type DeviceListResponse, type EnrollResponse, type FleetPage } from '@enrolld/protocol';
import { readCertificateIdentity } from '@enrolld/core/ca/index.js';
import { makeCsr } from '../support/csr-factory.js';
import {
  adminDelete, adminGet, adminPost, certificatesOf, createEnvironment, enrollIn, getBytes, readCrl, signedBy, tokenIn,
} from '../support/environments.js';
import { certificatesInPkcs7, decodeBase64Body } from '../support/est-support.js';
import { httpsRequest, postJson } from '../support/http.js';
import { opensslVerify } from '../support/openssl.js';
import { ENROLLD_BIN } from '../support/processes.js';
import { renewEst, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

const envName = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;
const sameDer = (a: string, b: string) => certificatesOf(a).map((c) => c.raw.toString('hex')).join() === certificatesOf(b).map((c) => c.raw.toString('hex')).join();

describe('environments', () => {
  let server: TestServer;
  let dev: string;
  let defaultIssuing: X509Certificate;
  let defaultRoot: X509Certificate;

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
    [defaultIssuing, defaultRoot] = certificatesOf(server.chainPem) as [X509Certificate, X509Certificate];
    dev = envName('dev');
    await createEnvironment(server, dev);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const problem = (res: { status: number; json(): { type: string; detail?: string } }) => ({ status: res.status, type: res.json().type, detail: res.json().detail });

  describe('over the admin API', () => {
    it('`default` exists from the start; its chain is the home CA, served at /v1/ca with or without ?env=default', async () => {
      const list = environmentListResponseSchema.parse((await adminGet(server, routes.adminEnvironments)).json());
      const byName = new Map(list.environments.map((e) => [e.name, e]));
      expect(byName.get('default')).toMatchObject({ ownRoot: false, createdBy: 'migration' });
      expect(sameDer(byName.get('default')!.chain, server.chainPem)).toBe(true);
      for (const route of [routes.ca, `${routes.ca}?env=default`]) {
        const res = await httpsRequest(server.apiUrl + route, server.rootPem);
        expect({ route, status: res.status, same: sameDer(res.text, server.chainPem) }).toEqual({ route, status: 200, same: true });
      }
    });

    it('create: an issuing CA of its own under the shared root, keys 0600 in ENROLLD_HOME/envs/<name>/, recorded in Postgres and audited', async () => {
      const name = envName('qa');
      const res = await adminPost(server, routes.adminEnvironments, { name });
      expect(res.status).toBe(201);
      expect(res.headers.location).toBe(routes.adminEnvironment(name));
      const body = res.json<{ name: string; ownRoot: boolean; chain: string; issuingFingerprint: string; rootFingerprint: string }>();
      const [issuing, root] = certificatesOf(body.chain) as [X509Certificate, X509Certificate];
      expect(body).toMatchObject({ name, ownRoot: false });
      // Under the shared root, but not the default issuing CA, and named after its environment.
      expect(root.raw.equals(defaultRoot.raw)).toBe(true);
      expect(issuing.raw.equals(defaultIssuing.raw)).toBe(false);
      expect(signedBy(issuing, root)).toBe(true);
      expect(issuing.subject).toContain(name);
      expect(body.issuingFingerprint).toBe(issuing.fingerprint256.replaceAll(':', '').toLowerCase());
      // Keys on disk, private to the owner; no root key in the environment (it has none of its own).
      const dir = path.join(server.home, 'envs', name);
      expect((await stat(path.join(dir, 'issuing.key'))).mode & 0o777).toBe(0o600);
      expect((await stat(path.join(dir, 'tls', 'server.key'))).mode & 0o777).toBe(0o600);
      await expect(stat(path.join(dir, 'root.key'))).rejects.toThrow(/ENOENT/);
      // The chain is in Postgres (what a broker on another host reads), and the creation is in the audit trail.
      const { rows } = await server.db.pool.query<{ issuing_certificate: string }>('SELECT issuing_certificate FROM environments WHERE name = $1', [name]);
      expect(new X509Certificate(rows[0]!.issuing_certificate).raw.equals(issuing.raw)).toBe(true);
      const audit = (await adminGet(server, `${routes.adminAudit}?action=environment.created`)).json<AuditListResponse>();
      expect(audit.events.find((e) => e.detail.name === name)).toMatchObject({ actor: expect.stringMatching(/^bearer:admin-/), detail: { name, ownRoot: false } });
      // Shown, listed, and its chain served to devices.
      expect((await adminGet(server, routes.adminEnvironment(name))).json()).toEqual(body);
      const listed = environmentListResponseSchema.parse((await adminGet(server, routes.adminEnvironments)).json());
      expect(listed.environments.map((e) => e.name)).toContain(name);
      expect(sameDer((await httpsRequest(`${server.apiUrl}${routes.ca}?env=${name}`, server.rootPem)).text, body.chain)).toBe(true);
    });

    it('--own-root: a root of its own (its key 0600 too), which shares nothing with the other environments', async () => {
      const name = envName('lab');
      const lab = await createEnvironment(server, name, { ownRoot: true });
      const [issuing, root] = certificatesOf(lab.chain) as [X509Certificate, X509Certificate];
      expect(lab.ownRoot).toBe(true);
      expect(root.raw.equals(defaultRoot.raw)).toBe(false);
      expect(signedBy(root, root)).toBe(true);
      expect(signedBy(issuing, root)).toBe(true);
      expect(signedBy(issuing, defaultRoot)).toBe(false);
      expect((await stat(path.join(server.home, 'envs', name, 'root.key'))).mode & 0o777).toBe(0o600);
      // A device of it chains to its own root only.
      const device = await enrollIn(server, name, uniqueDeviceId('lab'));
      expect((await opensslVerify(device.certPem, lab.chain)).code).toBe(0);
      expect((await opensslVerify(device.certPem, server.chainPem)).code).not.toBe(0);
    });

    it('bad input: 400 for a bad name, 409 for a taken one, 403 for `default`, 404 for none; an unknown environment is 400 on every route that takes one', async () => {
      expect(problem(await adminPost(server, routes.adminEnvironments, { name: 'Dev!' }))).toMatchObject({ status: 400, type: problemType('bad-request') });
      expect(problem(await adminPost(server, routes.adminEnvironments, { name: envName('x'), ownRoot: 'yes' }))).toMatchObject({ status: 400 });
      expect(problem(await adminPost(server, routes.adminEnvironments, { name: dev }))).toMatchObject({ status: 409, detail: `environment "${dev}" exists` });
      expect(problem(await adminPost(server, routes.adminEnvironments, { name: 'default' }))).toMatchObject({ status: 409 });
      expect(problem(await adminDelete(server, routes.adminEnvironment('default')))).toMatchObject({ status: 403, type: problemType('forbidden') });
      expect(problem(await adminDelete(server, routes.adminEnvironment('nowhere')))).toMatchObject({ status: 404 });
      expect(problem(await adminGet(server, routes.adminEnvironment('nowhere')))).toMatchObject({ status: 404 });
      expect(problem(await adminGet(server, routes.adminEnvironment('No!')))).toMatchObject({ status: 400 });

      const unknown = 'nowhere';
      const answers = {
        token: await adminPost(server, routes.adminTokens, { deviceId: uniqueDeviceId('x'), environment: unknown }),
        service: await adminPost(server, routes.adminServices, { name: uniqueDeviceId('svc'), csr: (await makeCsr({})).pem, environment: unknown }),
        devices: await adminGet(server, `${routes.adminDevices}?env=${unknown}`),
        fleet: await adminGet(server, `${routes.adminFleet}?env=${unknown}`),
        profiles: await adminGet(server, `${routes.adminProfiles}?env=${unknown}`),
        bulk: await adminPost(server, routes.adminBulkRevocations, { selector: { environment: unknown }, dryRun: true }),
        ca: await httpsRequest(`${server.apiUrl}${routes.ca}?env=${unknown}`, server.rootPem),
        crl: await httpsRequest(`${server.apiUrl}${routes.crl}?env=${unknown}`, server.rootPem),
        estCacerts: await httpsRequest(server.apiUrl + routes.est.labelled(unknown, 'cacerts'), server.rootPem),
      };
      for (const [route, res] of Object.entries(answers)) {
        expect({ route, ...problem(res) }).toEqual({ route, status: 400, type: problemType('bad-request'), detail: expect.stringContaining(`"${unknown}"`) });
      }
      // A name the identity rule refuses is a 400 too, before anything is looked up.
      expect((await httpsRequest(`${server.apiUrl}${routes.ca}?env=Bad!`, server.rootPem)).status).toBe(400);
      expect((await adminGet(server, `${routes.adminDevices}?env=Bad!`)).status).toBe(400);
    });

    it('delete: 409 with the counts while live certificates or unspent tokens belong to it; then gone, audited, not given out again, its CRL still served', async () => {
      const name = envName('tmp');
      await createEnvironment(server, name);
      const deviceId = uniqueDeviceId('tmp');
      const device = await enrollIn(server, name, deviceId);
      // One more token for the enrolled device, unspent.
      expect((await adminPost(server, routes.adminTokens, { deviceId, environment: name, replace: true })).status).toBe(201);
      const refused = await adminDelete(server, routes.adminEnvironment(name));
      expect(problem(refused)).toMatchObject({ status: 409, type: problemType('conflict') });
      expect(refused.json()).toMatchObject({ certificates: 1, tokens: 1 });
      // keyCompromise revokes the certificate and withdraws the device's unspent tokens: nothing live is left.
      expect((await adminPost(server, routes.adminRevokeDevice(deviceId), { reason: 'keyCompromise' })).status).toBe(200);
      expect((await adminDelete(server, routes.adminEnvironment(name))).status).toBe(204);

      expect((await adminGet(server, routes.adminEnvironment(name))).status).toBe(404);
      const listed = environmentListResponseSchema.parse((await adminGet(server, routes.adminEnvironments)).json());
      expect(listed.environments.map((e) => e.name)).not.toContain(name);
      const audit = (await adminGet(server, `${routes.adminAudit}?action=environment.deleted`)).json<AuditListResponse>();
      expect(audit.events.find((e) => e.detail.name === name)).toMatchObject({ actor: expect.stringMatching(/^bearer:admin-/) });
      expect(problem(await adminPost(server, routes.adminTokens, { deviceId: uniqueDeviceId('late'), environment: name }))).toMatchObject({ status: 400 });
      expect(problem(await adminPost(server, routes.adminEnvironments, { name }))).toMatchObject({ status: 409, detail: expect.stringContaining('was deleted') });
      // Relying parties still get its CRL, listing the revocation.
      const crl = await getBytes(server, `${routes.crl}?env=${name}`);
      expect(crl.status).toBe(200);
      const read = await readCrl(crl.body, device.response.chain);
      expect(read).toMatchObject({ verified: true });
      expect(read.serials).toContain(device.serial);
    });
  });

  describe('issuance per environment', () => {
    it('a token with an environment enrolls there: signed by its issuing CA, answered with its chain; the identity keeps its environment', async () => {
      const devChain = (await adminGet(server, routes.adminEnvironment(dev))).json<{ chain: string }>().chain;
      const [devIssuing] = certificatesOf(devChain) as [X509Certificate];
      const deviceId = uniqueDeviceId('devenv');
      const device = await enrollIn(server, dev, deviceId);
      expect(signedBy(device.certPem, devIssuing)).toBe(true);
      expect(signedBy(device.certPem, defaultIssuing)).toBe(false);
      expect(sameDer(device.response.chain, devChain)).toBe(true);
      expect((await opensslVerify(device.certPem, devChain)).code).toBe(0);
      // Same root, other issuing CA: a verifier holding the root accepts it only with the dev intermediate.
      expect((await opensslVerify(device.certPem, server.chainPem)).code).not.toBe(0);
      // Listed in its environment only.
      const inDev = (await adminGet(server, `${routes.adminDevices}?env=${dev}`)).json<DeviceListResponse>();
      expect(inDev.devices.find((d) => d.id === deviceId)).toMatchObject({ environment: dev, status: 'active' });
      const inDefault = (await adminGet(server, `${routes.adminDevices}?env=default&limit=1000`)).json<DeviceListResponse>();
      expect(inDefault.devices.map((d) => d.id)).not.toContain(deviceId);
      // The identity keeps its environment: a token for it in another one is refused, naming why.
      const elsewhere = await adminPost(server, routes.adminTokens, { deviceId, replace: true });
      expect(problem(elsewhere)).toMatchObject({ status: 400, detail: expect.stringContaining('keeps the environment') });
      expect((await adminGet(server, routes.adminDevice(deviceId))).json()).toMatchObject({ environment: dev });
    });

    it('profiles are per environment: a profile made in one is unknown in another; the certificate names it', async () => {
      const gold = { name: 'gold', kind: 'device', acl: [{ effect: 'allow', action: 'publish', filter: 'devices/{id}/#' }] };
      expect((await adminPost(server, `${routes.adminProfiles}?env=${dev}`, gold)).status).toBe(201);
      const names = async (env: string) => (await adminGet(server, `${routes.adminProfiles}?env=${env}`)).json<{ profiles: Array<{ name: string }> }>().profiles.map((p) => p.name);
      expect(await names(dev)).toEqual(['device', 'gold', 'service']);
      expect(await names('default')).not.toContain('gold');
      expect(problem(await adminPost(server, routes.adminTokens, { deviceId: uniqueDeviceId('g'), profile: 'gold' }))).toMatchObject({ status: 400, detail: expect.stringContaining('unknown profile "gold"') });
      const deviceId = uniqueDeviceId('gold');
      const token = await adminPost(server, routes.adminTokens, { deviceId, profile: 'gold', environment: dev });
      expect(token.status).toBe(201);
      const csr = await makeCsr({ cn: deviceId });
      const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token: token.json<Array<{ token: string }>>()[0]!.token, csr: csr.pem });
      expect(enrolled.status).toBe(201);
      expect(readCertificateIdentity(new X509Certificate(enrolled.json<EnrollResponse>().certificate).raw).profile).toEqual({ name: 'gold', version: 1 });
    });

    it('renewal keeps the environment, over REST and over EST', async () => {
      const devChain = (await adminGet(server, routes.adminEnvironment(dev))).json<{ chain: string }>().chain;
      const [devIssuing] = certificatesOf(devChain) as [X509Certificate];
      const device = await enrollIn(server, dev, uniqueDeviceId('renew'));
      const rest = await renewRest(server, device, (await makeCsr({ cn: device.deviceId })).pem);
      expect(rest.status).toBe(201);
      const renewed = rest.json<EnrollResponse>();
      expect(signedBy(renewed.certificate, devIssuing)).toBe(true);
      expect(sameDer(renewed.chain, devChain)).toBe(true);
      const other = await enrollIn(server, dev, uniqueDeviceId('renew-est'));
      const est = await renewEst(server, other, (await makeCsr({ cn: other.deviceId })).der);
      expect(est.status).toBe(200);
      const [issued] = certificatesInPkcs7(decodeBase64Body(est.text));
      expect(signedBy(new X509Certificate(issued!), devIssuing)).toBe(true);
    });

    it('EST: a label names the environment (RFC 7030 §3.2.2): its cacerts, and enrollment held to it before the token is spent', async () => {
      const devChain = (await adminGet(server, routes.adminEnvironment(dev))).json<{ chain: string }>().chain;
      const cacerts = await httpsRequest(server.apiUrl + routes.est.labelled(dev, 'cacerts'), server.rootPem);
      expect(cacerts.status).toBe(200);
      expect(certificatesInPkcs7(decodeBase64Body(cacerts.text)).map((c) => c.toString('hex')).sort()).toEqual(certificatesOf(devChain).map((c) => c.raw.toString('hex')).sort());
      const unlabelled = await httpsRequest(server.apiUrl + routes.est.cacerts, server.rootPem);
      expect(certificatesInPkcs7(decodeBase64Body(unlabelled.text)).map((c) => c.toString('hex')).sort()).toEqual(certificatesOf(server.chainPem).map((c) => c.raw.toString('hex')).sort());

      const deviceId = uniqueDeviceId('estenv');
      const token = await tokenIn(server, dev, deviceId);
      const csr = await makeCsr({ cn: deviceId });
      const simpleEnroll = (label: string) =>
        httpsRequest(server.apiUrl + routes.est.labelled(label, 'simpleenroll'), server.rootPem, {
          method: 'POST',
          headers: { 'content-type': 'application/pkcs10', authorization: `Basic ${Buffer.from(`${deviceId}:${token}`).toString('base64')}` },
          body: csr.der.toString('base64'),
        });
      const wrongLabel = await simpleEnroll('default');
      expect(problem(wrongLabel)).toMatchObject({ status: 400, detail: expect.stringContaining(`enrolls in environment "${dev}"`) });
      // The refusal spent nothing: the same token enrolls under its own label.
      const right = await simpleEnroll(dev);
      expect(right.status).toBe(200);
      const [issued] = certificatesInPkcs7(decodeBase64Body(right.text));
      expect(signedBy(new X509Certificate(issued!), certificatesOf(devChain)[0]!)).toBe(true);
    });

    it('one CRL per issuing CA: a revocation in an environment is listed on its CRL only, signed by its issuing CA', async () => {
      const devChain = (await adminGet(server, routes.adminEnvironment(dev))).json<{ chain: string }>().chain;
      const devDevice = await enrollIn(server, dev, uniqueDeviceId('crl-dev'));
      const defaultDevice = await enrollIn(server, 'default', uniqueDeviceId('crl-default'));
      for (const d of [devDevice, defaultDevice]) expect((await adminPost(server, routes.adminRevokeDevice(d.deviceId), { reason: 'keyCompromise' })).status).toBe(200);
      // A fetch waits for the rebuild that covers every revocation committed before it.
      const devCrl = await readCrl((await getBytes(server, `${routes.crl}?env=${dev}`)).body, devChain);
      const defaultCrl = await readCrl((await getBytes(server, routes.crl)).body, server.chainPem);
      expect(devCrl.verified).toBe(true);
      expect(defaultCrl.verified).toBe(true);
      expect(devCrl.serials).toContain(devDevice.serial);
      expect(devCrl.serials).not.toContain(defaultDevice.serial);
      expect(defaultCrl.serials).toContain(defaultDevice.serial);
      expect(defaultCrl.serials).not.toContain(devDevice.serial);
      // Each CRL verifies only with its own issuing CA.
      expect((await readCrl((await getBytes(server, `${routes.crl}?env=${dev}`)).body, server.chainPem)).verified).toBe(false);
      const { rows } = await server.db.pool.query<{ environment: string }>('SELECT DISTINCT environment FROM crls');
      expect(rows.map((r) => r.environment)).toEqual(expect.arrayContaining(['default', dev]));
    });

    it('the fleet search and the bulk revocation selector take an environment', async () => {
      const prefix = `fleet-${randomBytes(3).toString('hex')}-`;
      const inDev = [await enrollIn(server, dev, `${prefix}a`), await enrollIn(server, dev, `${prefix}b`)];
      await enrollIn(server, 'default', `${prefix}c`);
      const fleet = (await adminGet(server, `${routes.adminFleet}?env=${dev}&prefix=${prefix}`)).json<FleetPage>();
      expect(fleet.devices.map((d) => [d.id, d.environment])).toEqual(inDev.map((d) => [d.deviceId, dev]));
      expect((await adminGet(server, `${routes.adminFleet}?prefix=${prefix}`)).json<FleetPage>().devices).toHaveLength(3);
      const dryRun = (environment?: string) => adminPost(server, routes.adminBulkRevocations, { selector: { prefix, ...(environment ? { environment } : {}) }, dryRun: true });
      expect((await dryRun(dev)).json()).toMatchObject({ count: 2, sample: inDev.map((d) => ({ deviceId: d.deviceId, serial: d.serial })) });
      expect((await dryRun('default')).json()).toMatchObject({ count: 1 });
      expect((await dryRun()).json()).toMatchObject({ count: 3 });
    });
  });

  // Each case runs the CLI a few times (about a second per process on an idle 2-core machine): a longer timeout.
  describe('the CLI', () => {
    /** Runs the compiled `enrolld` against the test server; resolves with its exit code and output. */
    function enrolld(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
      const env = { PATH: process.env.PATH ?? '', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl, NO_COLOR: '1' };
      return new Promise((resolve) => {
        execFile(process.execPath, [ENROLLD_BIN, ...args], { env }, (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        });
      });
    }

    it('env create, list, show (and --chain), delete; token create --env and devices list --env', async () => {
      const name = envName('cli');
      const created = await enrolld('env', 'create', name);
      expect(created).toMatchObject({ code: 0, stdout: expect.stringContaining(`${name}  (the shared root)`) });
      expect((await enrolld('env', 'list')).stdout).toMatch(new RegExp(`│ ${name}\\s+│ shared\\s+│`));
      const chain = await enrolld('env', 'show', name, '--chain');
      expect(certificatesOf(chain.stdout)).toHaveLength(2);
      const shown = JSON.parse((await enrolld('env', 'show', name, '--json')).stdout) as { chain: string };
      expect(sameDer(chain.stdout, shown.chain)).toBe(true);

      const deviceId = uniqueDeviceId('cli');
      const token = await enrolld('token', 'create', '--device', deviceId, '--env', name);
      expect(token.code).toBe(0);
      const csr = await makeCsr({ cn: deviceId });
      expect((await postJson(server.apiUrl + routes.enroll, server.rootPem, { token: token.stdout.trim(), csr: csr.pem })).status).toBe(201);
      const listed = await enrolld('devices', 'list', '--env', name);
      expect(listed.stdout).toMatch(new RegExp(`│ ${deviceId}\\s+│ ${name}\\s+│ active\\s+│`));
      expect(listed.stderr).toContain('1 devices: 1 active');

      // Live certificate: the delete is refused with the count, exit 1.
      const refused = await enrolld('env', 'delete', name);
      expect(refused).toMatchObject({ code: 1, stderr: expect.stringContaining('1 live certificate(s)') });
      expect((await adminPost(server, routes.adminRevokeDevice(deviceId), { reason: 'unspecified' })).status).toBe(200);
      expect(await enrolld('env', 'delete', name)).toMatchObject({ code: 0, stderr: expect.stringContaining(`environment ${name} deleted`) });
    }, 180_000);

    it('bad input: a bad name is a usage error (exit 2); an unknown environment or `default` fails naming it (exit 1)', async () => {
      expect(await enrolld('env', 'create', 'Bad!')).toMatchObject({ code: 2, stderr: expect.stringContaining('"Bad!" is not a valid environment name') });
      expect(await enrolld('token', 'create', '--device', uniqueDeviceId('x'), '--env', 'Bad!')).toMatchObject({ code: 2 });
      expect(await enrolld('token', 'create', '--device', uniqueDeviceId('x'), '--env', 'nowhere')).toMatchObject({ code: 1, stderr: expect.stringContaining('unknown environment "nowhere"') });
      expect(await enrolld('devices', 'list', '--env', 'nowhere')).toMatchObject({ code: 1, stderr: expect.stringContaining('unknown environment "nowhere"') });
      expect(await enrolld('env', 'delete', 'default')).toMatchObject({ code: 1, stderr: expect.stringContaining('"default" cannot be deleted') });
      expect(await enrolld('env', 'show', 'nowhere')).toMatchObject({ code: 1, stderr: expect.stringContaining('no environment "nowhere"') });
    }, 180_000);
  });
});
