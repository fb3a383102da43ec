import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemType, routes } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

describe('admin API', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it.each([
    ['no credential', undefined],
    ['a malformed header', 'Basic abc'],
    ['an unknown token', 'Bearer eat_not-a-real-token'],
    ['a bootstrap token', 'BOOTSTRAP'],
  ])('ADM-01: every admin route answers 401 to %s', async (_name, header) => {
    let authorization = header;
    if (header === 'BOOTSTRAP') authorization = `Bearer ${await server.createToken(uniqueDeviceId())}`;
    const headers: Record<string, string> = authorization ? { authorization } : {};
    const calls = [
      httpsRequest(server.apiUrl + routes.adminDevices, server.rootPem, { headers }),
      httpsRequest(server.apiUrl + routes.adminDevice('x'), server.rootPem, { headers }),
      httpsRequest(server.apiUrl + routes.adminDeviceTokens('x'), server.rootPem, { headers }),
      postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId: 'x' }, headers),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(401);
      expect(res.json().type).toBe(problemType('unauthorized'));
    }
  });

  it('creates a token bound to one device, stored only as a hash, with ≥ 128 bits and the default 24 h expiry', async () => {
    const deviceId = uniqueDeviceId();
    const res = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, { deviceId }, auth());
    expect(res.status).toBe(201);
    const [created] = res.json();
    expect(created.deviceId).toBe(deviceId);
    expect(created.token).toMatch(/^ebt_[A-Za-z0-9_-]{43}$/); // 32 random bytes
    const hours = (new Date(created.expiresAt).getTime() - Date.now()) / 3_600_000;
    expect(hours).toBeGreaterThan(23.9);
    expect(hours).toBeLessThanOrEqual(24);
    const { rows } = await server.db.pool.query('SELECT token_hash FROM bootstrap_tokens WHERE device_id = $1', [deviceId]);
    expect(rows).toHaveLength(1);
    expect(rows[0].token_hash.toString('utf8')).not.toContain(created.token.slice(4, 20));
    const dump = await server.db.pool.query(`SELECT string_agg(t::text, '') AS all FROM bootstrap_tokens t`);
    expect(dump.rows[0].all).not.toContain(created.token.slice(4));
  });

  it('creates a production batch as CSV in one transaction', async () => {
    const prefix = `${uniqueDeviceId('line')}-`;
    const res = await httpsRequest(server.apiUrl + routes.adminTokens, server.rootPem, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json', accept: 'text/csv' },
      body: JSON.stringify({ prefix, count: 250, ttlSeconds: 900 }),
    });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const lines = res.text.trim().split('\n');
    expect(lines[0]).toBe('deviceId,token,expiresAt,issuedAs,batchId');
    expect(lines).toHaveLength(251);
    expect(lines[1]!.startsWith(`${prefix}0001,ebt_`)).toBe(true);
    expect(lines[250]!.startsWith(`${prefix}0250,`)).toBe(true);
    expect(new Set(lines.slice(1).map((l) => l.split(',')[1])).size).toBe(250);
  });

  it.each([
    ['an invalid device id', { deviceId: 'Bad/Id' }],
    ['a prefix and a device', { deviceId: 'a', prefix: 'b', count: 1 }],
    ['a zero count', { prefix: 'p-', count: 0 }],
    ['an absurd ttl', { deviceId: 'a', ttlSeconds: -5 }],
    ['an unknown field', { deviceId: 'a', admin: true }],
  ])('400 for %s', async (_name, body) => {
    const res = await postJson(server.apiUrl + routes.adminTokens, server.rootPem, body, auth());
    expect(res.status).toBe(400);
    expect(res.json().type).toBe(problemType('bad-request'));
  });

  it('lists devices with their state and shows one device with its certificate history', async () => {
    const deviceId = uniqueDeviceId('list');
    const token = await server.createToken(deviceId);
    const pending = await httpsRequest(`${server.apiUrl}${routes.adminDevice(deviceId)}`, server.rootPem, { headers: auth() });
    expect(pending.json()).toMatchObject({ id: deviceId, status: 'pending', certificates: [] });
    const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    const detail = (await httpsRequest(`${server.apiUrl}${routes.adminDevice(deviceId)}`, server.rootPem, { headers: auth() })).json();
    expect(detail).toMatchObject({ id: deviceId, status: 'active', currentSerial: enrolled.json().serial });
    expect(detail.certificates).toEqual([expect.objectContaining({ serial: enrolled.json().serial, status: 'active', revokedAt: null })]);
    const list = await httpsRequest(`${server.apiUrl}${routes.adminDevices}?prefix=list-&status=active`, server.rootPem, { headers: auth() });
    expect(list.json().devices.map((d: { id: string }) => d.id)).toContain(deviceId);
    expect((await httpsRequest(`${server.apiUrl}${routes.adminDevice('nobody-here')}`, server.rootPem, { headers: auth() })).status).toBe(404);
    expect((await httpsRequest(`${server.apiUrl}${routes.adminDevices}?limit=0`, server.rootPem, { headers: auth() })).status).toBe(400);
  });
});
