// Client input that must never reach a 5xx, swept over EVERY route of the app: a body whose Content-Encoding does not
// decode (gzip, deflate, br), malformed percent-encoding in a path parameter, and an empty body where JSON is expected.
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { problemType, routes } from '@enrolld/protocol';
import { declaredRoutes, routesOnlyApp } from '../support/app-routes.js';
import { httpsRequest, type RawResponse } from '../support/http.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

interface RouteUnderTest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** As express declares it, with :params. */
  path: string;
  /** The media type the route reads, for a route that reads a body. */
  body?: 'application/json' | 'application/pkcs10';
}

// Every route createHttpApp serves; the first test checks this table against the app's own router.
const ROUTES: RouteUnderTest[] = [
  { method: 'GET', path: routes.healthz },
  { method: 'GET', path: routes.readyz },
  { method: 'GET', path: routes.metrics },
  { method: 'POST', path: routes.enroll, body: 'application/json' },
  { method: 'GET', path: routes.ca },
  { method: 'GET', path: routes.crl },
  { method: 'POST', path: routes.renew, body: 'application/json' },
  { method: 'GET', path: routes.est.cacerts },
  { method: 'GET', path: routes.est.csrattrs },
  { method: 'POST', path: routes.est.simpleenroll, body: 'application/pkcs10' },
  { method: 'POST', path: routes.est.simplereenroll, body: 'application/pkcs10' },
  { method: 'GET', path: '/.well-known/est/:label/cacerts' },
  { method: 'GET', path: '/.well-known/est/:label/csrattrs' },
  { method: 'POST', path: '/.well-known/est/:label/simpleenroll', body: 'application/pkcs10' },
  { method: 'POST', path: '/.well-known/est/:label/simplereenroll', body: 'application/pkcs10' },
  { method: 'POST', path: routes.adminTokens, body: 'application/json' },
  { method: 'GET', path: routes.adminDevices },
  { method: 'GET', path: `${routes.adminDevices}/:id` },
  { method: 'GET', path: `${routes.adminDevices}/:id/tokens` },
  { method: 'POST', path: '/v1/admin/devices/:id/revoke', body: 'application/json' },
  { method: 'POST', path: '/v1/admin/certificates/:serial/revoke', body: 'application/json' },
  { method: 'GET', path: routes.adminAudit },
  { method: 'GET', path: routes.adminAuditVerify },
  { method: 'POST', path: routes.adminBulkRevocations, body: 'application/json' },
  { method: 'GET', path: routes.adminBulkRevocations },
  { method: 'GET', path: `${routes.adminBulkRevocations}/:id` },
  { method: 'GET', path: routes.adminFleet },
  { method: 'GET', path: `${routes.adminFleet}/devices/:id` },
  { method: 'GET', path: routes.adminFleetCharts },
  { method: 'GET', path: routes.adminEvents },
  { method: 'GET', path: routes.adminProfiles },
  { method: 'POST', path: routes.adminProfiles, body: 'application/json' },
  { method: 'GET', path: `${routes.adminProfiles}/:name` },
  { method: 'PUT', path: `${routes.adminProfiles}/:name`, body: 'application/json' },
  { method: 'DELETE', path: `${routes.adminProfiles}/:name` },
  { method: 'POST', path: routes.adminServices, body: 'application/json' },
  { method: 'GET', path: routes.adminWhoami },
  { method: 'GET', path: routes.adminAdmins },
  { method: 'POST', path: routes.adminAdmins, body: 'application/json' },
  { method: 'PUT', path: `${routes.adminAdmins}/:name/role`, body: 'application/json' },
  { method: 'POST', path: `${routes.adminAdmins}/:name/revoke`, body: 'application/json' },
  { method: 'GET', path: routes.adminEnvironments },
  { method: 'POST', path: routes.adminEnvironments, body: 'application/json' },
  { method: 'GET', path: `${routes.adminEnvironments}/:name` },
  { method: 'DELETE', path: `${routes.adminEnvironments}/:name` },
  { method: 'GET', path: '/console/' },
  { method: 'GET', path: '/console/sign-in' },
  { method: 'POST', path: '/console/sign-in' },
  { method: 'POST', path: '/console/sign-out' },
  { method: 'GET', path: '/console/session' },
  { method: 'GET', path: '/console/assets/vendor/:file' },
];

const withParams = (path: string, value: string) => path.replace(/:[a-z]+/g, value);

function expectProblem(res: RawResponse, status: number, kind: string): void {
  expect({ status: res.status, type: res.headers['content-type'] }).toEqual({ status, type: expect.stringContaining('application/problem+json') });
  expect(res.json().type).toBe(problemType(kind as never));
}

describe('hostile HTTP input on every route', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('the sweep covers every route the app declares', () => {
    const app = routesOnlyApp();
    expect(declaredRoutes(app)).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  describe.each(['gzip', 'deflate', 'br'])('a body that does not decode as Content-Encoding: %s', (encoding) => {
    it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))('%s: 400 problem+json where a body is read, never 5xx', async (_name, route) => {
      const res = await httpsRequest(server.apiUrl + withParams(route.path, 'dev-1'), server.rootPem, {
        method: route.method,
        headers: { ...auth(), 'content-type': route.body ?? 'application/json', 'content-encoding': encoding },
        body: 'these bytes are not compressed',
      });
      if (route.body) {
        expectProblem(res, 400, 'bad-request');
        expect(res.json().detail).toMatch(/Content-Encoding/);
      } else if (route.path === routes.adminEvents) {
        // An event stream request carries no body: refused before any stream starts.
        expectProblem(res, 400, 'bad-request');
      } else {
        expect(res.status).toBeLessThan(500);
      }
    });
  });

  it('a body sent without Content-Length or Transfer-Encoding is not HTTP: 400 problem+json from the server, the connection closed', async () => {
    // RFC 9112 §6.3: with neither header a request has no body, so these bytes are read as the next request line.
    const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(server.apiUrl).port), ca: server.rootPem, servername: 'localhost' });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(`GET ${routes.adminEvents} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${server.adminToken}\r\nContent-Encoding: gzip\r\n\r\nthese bytes are not compressed`);
    await closed;
    const answer = Buffer.concat(chunks).toString('utf8');
    const [head = '', body = ''] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(body)).toMatchObject({ type: problemType('bad-request'), status: 400, requestId: expect.any(String) });
  });

  it('a truncated gzip body (a valid header, no end) is a 400 too', async () => {
    const { gzipSync } = await import('node:zlib');
    const res = await httpsRequest(server.apiUrl + routes.enroll, server.rootPem, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify({ token: 'x', csr: 'y' })).subarray(0, 12),
    });
    expectProblem(res, 400, 'bad-request');
  });

  describe.each(['%ff', '%', '%c3%28', '%e0%80'])('malformed percent-encoding %s', (bad) => {
    it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))('%s: 400 in a path parameter, 404 elsewhere, always problem+json', async (_name, route) => {
      const path = route.path.includes('/:') ? withParams(route.path, bad) : `${route.path}/${bad}`;
      // /v1/admin/devices/%ff is GET /v1/admin/devices/:id with a bad parameter. Express decodes the parameters of a path
      // before it looks at the method, so POST /v1/admin/revocations/%ff meets GET /v1/admin/revocations/:id's decoding.
      const hasParam = ROUTES.some((r) => r.path.includes('/:') && withParams(r.path, bad) === path);
      const res = await httpsRequest(server.apiUrl + path, server.rootPem, {
        method: route.method,
        headers: { ...auth(), 'content-type': 'application/json' },
        body: route.method === 'POST' || route.method === 'PUT' ? '{}' : undefined,
      });
      if (hasParam) expectProblem(res, 400, 'bad-request');
      else expectProblem(res, 404, 'not-found');
    });
  });

  it.each(ROUTES.filter((r) => r.body === 'application/json').map((r) => [`${r.method} ${r.path}`, r] as const))(
    'an empty body on %s is never answered "must be application/json, not application/json"',
    async (_name, route) => {
      const res = await httpsRequest(server.apiUrl + withParams(route.path, 'dev-1'), server.rootPem, {
        method: route.method,
        headers: { ...auth(), 'content-type': 'application/json', 'content-length': 0 },
      });
      expect(res.status).toBeLessThan(500);
      expect(res.text).not.toMatch(/not application\/json/);
      if (route.path.endsWith('/revoke')) return; // the revoke body is optional: an empty one means reason "unspecified"
      expectProblem(res, 400, 'bad-request');
      expect(res.json().detail).toBe('the request has no body; send application/json');
    },
  );
});
