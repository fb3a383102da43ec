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
  est: {
    cacerts: '/.well-known/est/cacerts',
    simpleenroll: '/.well-known/est/simpleenroll',
    simplereenroll: '/.well-known/est/simplereenroll',
    csrattrs: '/.well-known/est/csrattrs',
  },
} as const;

export const MAX_ENROLL_BODY_BYTES = 16 * 1024;
