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
  adminEnvironments: '/v1/admin/environments',
  adminEnvironment: (name: string) => `/v1/admin/environments/${encodeURIComponent(name)}`,
  est: {
    cacerts: '/.well-known/est/cacerts',
    simpleenroll: '/.well-known/est/simpleenroll',
    simplereenroll: '/.well-known/est/simplereenroll',
    csrattrs: '/.well-known/est/csrattrs',
    /** RFC 7030 §3.2.2: an optional label after `est/` names the environment (`/.well-known/est/dev/cacerts`). */
    labelled: (label: string, operation: 'cacerts' | 'simpleenroll' | 'simplereenroll' | 'csrattrs') =>
      `/.well-known/est/${encodeURIComponent(label)}/${operation}`,
  },
} as const;

export const MAX_ENROLL_BODY_BYTES = 16 * 1024;
