// Admins by certificate for the tests: an admin created over the real API (bearer), and admin API requests over real
// TLS that present a client certificate, a bearer token, or nothing.
import { routes, type AdminRole, type CreateAdminResponse } from '@enrolld/protocol';
import { makeCsr } from './csr-factory.js';
import { httpsRequest, type RawResponse } from './http.js';
import { credsFrom, type DeviceCreds } from './renew-support.js';
import type { TestServer } from './server-harness.js';

/** How an admin API request authenticates. */
export type AdminCaller = { bearer: string } | { cert: Pick<DeviceCreds, 'clientChainPem' | 'keyPem'> } | 'none';

export function adminRequest(server: Pick<TestServer, 'apiUrl' | 'rootPem'>, caller: AdminCaller, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return httpsRequest(server.apiUrl + path, server.rootPem, {
    method,
    headers: {
      ...(caller !== 'none' && 'bearer' in caller ? { authorization: `Bearer ${caller.bearer}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(caller !== 'none' && 'cert' in caller ? { cert: caller.cert.clientChainPem, key: caller.cert.keyPem } : {}),
  });
}

/** POST /v1/admin/admins as `by` (the server's bearer token unless given): the admin's key, certificate and role. */
export async function createAdmin(server: TestServer, name: string, role: AdminRole, by: AdminCaller = { bearer: server.adminToken }): Promise<DeviceCreds & { role: AdminRole }> {
  const csr = await makeCsr({ cn: name });
  const res = await adminRequest(server, by, 'POST', routes.adminAdmins, { name, role, csr: csr.pem });
  if (res.status !== 201) throw new Error(`admin create failed: ${res.status} ${res.text}`);
  const created = res.json<CreateAdminResponse>();
  return { ...credsFrom(created, csr.privateKey), role: created.role };
}
