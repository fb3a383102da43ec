// The admin role matrix over real TLS: every admin route of the role table (adminRouteRoles, protocol/src/routes.ts)
// × every credential (the bearer token, an admin certificate of each role, none). The matrix is generated from the
// table, and the table is checked against the routes the app declares, so a new route without a role fails here.
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ADMIN_ROLES, adminRouteRoles, problemType, roleAllows, type AdminRole } from '@enrolld/protocol';
import { createAdmin, type AdminCaller } from '../support/admin-certs.js';
import { declaredRoutes, routesOnlyApp } from '../support/app-routes.js';
import type { DeviceCreds } from '../support/renew-support.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

/** Each declared route, its `:params` filled with values that name nothing, so an allowed call changes nothing. */
const ROUTES = Object.entries(adminRouteRoles as Record<string, AdminRole>).map(([key, role]) => {
  const [method, pattern] = key.split(' ') as [string, string];
  const path = pattern
    .replace(':serial', '1f2e3d4c5b6a')
    .replace(':id', pattern.startsWith('/v1/admin/revocations') ? randomUUID() : 'matrix-nobody')
    .replace(/:[a-z]+/g, 'matrix-nobody');
  return { key, method, path, role };
});

type Credential = 'none' | 'bearer' | AdminRole;
const CREDENTIALS: Credential[] = ['none', 'bearer', ...ADMIN_ROLES];

/** What the guard must answer: 401 without a credential, 403 below the route's role, anything else (the handler's) above it. */
function expected(credential: Credential, required: AdminRole): 401 | 403 | 'allowed' {
  if (credential === 'none') return 401;
  if (credential === 'bearer') return 'allowed';
  return roleAllows(credential, required) ? 'allowed' : 403;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** One request; an event stream is read up to its headers and closed. */
function call(server: TestServer, caller: AdminCaller, method: string, path: string): Promise<Answer> {
  const body = method === 'POST' || method === 'PUT' ? '{}' : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(server.apiUrl + path, {
      method,
      ca: server.rootPem,
      agent: false,
      headers: {
        ...(caller !== 'none' && 'bearer' in caller ? { authorization: `Bearer ${caller.bearer}` } : {}),
        ...(body ? { 'content-type': 'application/json', 'content-length': body.length } : {}),
      },
      ...(caller !== 'none' && 'cert' in caller ? { cert: caller.cert.clientChainPem, key: caller.cert.keyPem } : {}),
    }, (res) => {
      const contentType = String(res.headers['content-type'] ?? '');
      if (contentType.startsWith('text/event-stream')) {
        resolve({ status: res.statusCode!, contentType, body: '' });
        res.destroy();
        return;
      }
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, contentType, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('admin role matrix', () => {
  let server: TestServer;
  const certs = new Map<AdminRole, DeviceCreds>();
  const callerOf = (credential: Credential): AdminCaller =>
    credential === 'none' ? 'none' : credential === 'bearer' ? { bearer: server.adminToken } : { cert: certs.get(credential)! };

  beforeAll(async () => {
    // Failed credentials would otherwise fill the per-address limit of 401s the matrix sends on purpose.
    server = await startTestServer({ env: { TOKEN_FAILURE_LIMIT: '0' } });
    for (const role of ADMIN_ROLES) certs.set(role, await createAdmin(server, `matrix-${role}`, role));
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('every /v1/admin route the app declares has a role in adminRouteRoles, and every line there is a route of the app', () => {
    const app = routesOnlyApp(server.chainPem);
    const adminRoutes = declaredRoutes(app).filter((r) => r.split(' ')[1]!.startsWith('/v1/admin/'));
    expect(adminRoutes).toEqual(Object.keys(adminRouteRoles).sort());
  });

  const cases = ROUTES.flatMap((route) => CREDENTIALS.map((credential) => [route.key, credential, route] as const));
  it.each(cases)('%s as %s', async (_key, credential, route) => {
    const answer = await call(server, callerOf(credential), route.method, route.path);
    const want = expected(credential, route.role);
    if (want === 'allowed') {
      // Past the guard: whatever the handler says about parameters that name nothing, never a refusal and never a 5xx.
      expect({ refused: answer.status === 401 || answer.status === 403, serverError: answer.status >= 500, answer }).toMatchObject({ refused: false, serverError: false });
    } else {
      expect({ status: answer.status, contentType: answer.contentType }).toEqual({ status: want, contentType: expect.stringContaining('application/problem+json') });
      const problem = JSON.parse(answer.body) as { type: string; detail: string; requiredRole?: string };
      expect(problem.type).toBe(problemType(want === 401 ? 'unauthorized' : 'forbidden'));
      if (want === 403) expect(problem).toMatchObject({ requiredRole: route.role, role: credential });
    }
  });

  it('the guard reads a path as express routes it: another spelling of a route gets that route\'s role', async () => {
    expect((await call(server, callerOf('viewer'), 'GET', '/V1/ADMIN/Devices/')).status).toBe(200);
    const refused = await call(server, callerOf('operator'), 'POST', '/v1/admin/PROFILES/');
    expect({ status: refused.status, requiredRole: JSON.parse(refused.body).requiredRole }).toEqual({ status: 403, requiredRole: 'owner' });
  });
});
