import type { AdminRole } from './admins.js';

// The HTTP route table (docs/architecture.md). Server, CLI, simulator and tests all take paths from here.
export const routes = {
  enroll: '/v1/enroll',
  renew: '/v1/renew',
  ca: '/v1/ca',
  crl: '/v1/crl',
  healthz: '/healthz',
  readyz: '/readyz',
  metrics: '/metrics',
  adminTokens: '/v1/admin/tokens',
  adminDevices: '/v1/admin/devices',
  adminDevice: (id: string) => `/v1/admin/devices/${encodeURIComponent(id)}`,
  adminDeviceTokens: (id: string) => `/v1/admin/devices/${encodeURIComponent(id)}/tokens`,
  adminRevokeDevice: (id: string) => `/v1/admin/devices/${encodeURIComponent(id)}/revoke`,
  adminRevokeCertificate: (serial: string) => `/v1/admin/certificates/${encodeURIComponent(serial)}/revoke`,
  adminProfiles: '/v1/admin/profiles',
  adminProfile: (name: string) => `/v1/admin/profiles/${encodeURIComponent(name)}`,
  adminServices: '/v1/admin/services',
  adminAudit: '/v1/admin/audit',
  adminFleet: '/v1/admin/fleet',
  adminFleetDevice: (id: string) => `/v1/admin/fleet/devices/${encodeURIComponent(id)}`,
  adminFleetCharts: '/v1/admin/fleet/charts',
  adminEvents: '/v1/admin/events',
  adminBulkRevocations: '/v1/admin/revocations',
  adminBulkRevocation: (id: string) => `/v1/admin/revocations/${encodeURIComponent(id)}`,
  adminAuditVerify: '/v1/admin/audit/verify',
  adminWhoami: '/v1/admin/whoami',
  adminAdmins: '/v1/admin/admins',
  adminAdminRole: (name: string) => `/v1/admin/admins/${encodeURIComponent(name)}/role`,
  adminAdminRevoke: (name: string) => `/v1/admin/admins/${encodeURIComponent(name)}/revoke`,
  est: {
    cacerts: '/.well-known/est/cacerts',
    simpleenroll: '/.well-known/est/simpleenroll',
    simplereenroll: '/.well-known/est/simplereenroll',
    csrattrs: '/.well-known/est/csrattrs',
  },
} as const;

export const MAX_ENROLL_BODY_BYTES = 16 * 1024;

export type AdminRouteKey = `${'GET' | 'POST' | 'PUT' | 'DELETE'} /v1/admin/${string}`;

/**
 * The role each admin route needs, one line per route: `METHOD path` as express declares it (`:param` is one path
 * segment). The admin guard reads it for every request under /v1/admin (http/admin-auth.ts); a request that matches
 * no line needs `owner`, and test/integration/admin-roles.test.ts fails for a route of the app without a line here.
 * HEAD is GET's.
 */
export const adminRouteRoles = {
  'GET /v1/admin/whoami': 'viewer',
  'GET /v1/admin/devices': 'viewer',
  'GET /v1/admin/devices/:id': 'viewer',
  'GET /v1/admin/devices/:id/tokens': 'viewer',
  'GET /v1/admin/fleet': 'viewer',
  'GET /v1/admin/fleet/devices/:id': 'viewer',
  'GET /v1/admin/fleet/charts': 'viewer',
  'GET /v1/admin/events': 'viewer',
  'GET /v1/admin/audit': 'viewer',
  'GET /v1/admin/audit/verify': 'viewer',
  'GET /v1/admin/revocations': 'viewer',
  'GET /v1/admin/revocations/:id': 'viewer',
  'GET /v1/admin/profiles': 'viewer',
  'GET /v1/admin/profiles/:name': 'viewer',
  'POST /v1/admin/tokens': 'operator',
  'POST /v1/admin/services': 'operator',
  'POST /v1/admin/devices/:id/revoke': 'operator',
  'POST /v1/admin/certificates/:serial/revoke': 'operator',
  'POST /v1/admin/revocations': 'operator',
  'POST /v1/admin/profiles': 'owner',
  'PUT /v1/admin/profiles/:name': 'owner',
  'DELETE /v1/admin/profiles/:name': 'owner',
  'GET /v1/admin/admins': 'owner',
  'POST /v1/admin/admins': 'owner',
  'PUT /v1/admin/admins/:name/role': 'owner',
  'POST /v1/admin/admins/:name/revoke': 'owner',
} as const satisfies Record<AdminRouteKey, AdminRole>;

/** The declared routes as patterns, split once. */
const ADMIN_ROUTE_PATTERNS = Object.entries(adminRouteRoles as Record<string, AdminRole>).map(([key, role]) => {
  const [method, path] = key.split(' ') as [string, string];
  return { method, segments: path.split('/'), role };
});

/**
 * The role a request needs, by its method and path as express matches them: literal segments case-insensitively, a
 * `:param` any one non-empty segment, one trailing slash ignored. Undefined when no line of adminRouteRoles matches.
 */
export function adminRoleFor(method: string, path: string): AdminRole | undefined {
  const wanted = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
  const segments = (path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path).split('/');
  const match = ADMIN_ROUTE_PATTERNS.find((route) =>
    route.method === wanted &&
    route.segments.length === segments.length &&
    route.segments.every((part, i) => (part.startsWith(':') ? segments[i] !== '' : part.toLowerCase() === segments[i]!.toLowerCase())),
  );
  return match?.role;
}
