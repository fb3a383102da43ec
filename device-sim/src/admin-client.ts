// The admin API as the simulator uses it: bootstrap tokens in bulk, and revocation (docs/architecture.md).
import { Agent } from 'node:https';
import { createTokensResponseSchema, routes } from '@enrolld/protocol';
import type { CreatedToken, CreateServiceRequest, CreateTokenRequest, RevocationReason, RevokeRequest } from '@enrolld/protocol';
import { httpsCall, jsonOf, problemOf } from './https-request.js';
import { httpError } from './sim-error.js';

export interface AdminClient {
  createTokens(prefix: string, count: number, ttlSeconds?: number): Promise<CreatedToken[]>;
  revokeDevice(deviceId: string, reason: RevocationReason): Promise<void>;
  /** A service identity and its certificate for this CSR (POST /v1/admin/services): the REST enroll answer. */
  createService(name: string, csrPem: string, profile?: string): Promise<unknown>;
  /** The server's Prometheus metrics (text exposition format). */
  metricsText(): Promise<string>;
  close(): void;
}

export function createAdminClient(apiUrl: URL, ca: string, adminToken: string): AdminClient {
  const agent = new Agent({ keepAlive: true, maxSockets: 16, ca });
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json', accept: 'application/json' };
  return {
    async createTokens(prefix, count, ttlSeconds) {
      const out: CreatedToken[] = [];
      // the contract allows up to 100k per call; 5k keeps each response small
      for (let done = 0; done < count; ) {
        const n = Math.min(5_000, count - done);
        const batchPrefix = count > n ? `${prefix}${String(done / 5_000).padStart(2, '0')}-` : prefix;
        const request: CreateTokenRequest = { prefix: batchPrefix, count: n, ...(ttlSeconds ? { ttlSeconds } : {}) };
        const res = await httpsCall({
          what: 'admin-tokens',
          method: 'POST',
          url: new URL(routes.adminTokens, apiUrl),
          agent,
          headers,
          body: JSON.stringify(request),
        });
        if (res.status !== 201 && res.status !== 200) throw httpError(res.status, problemOf(res), 'admin-tokens');
        out.push(...createTokensResponseSchema.parse(jsonOf(res, 'admin-tokens')));
        done += n;
      }
      return out;
    },
    async revokeDevice(deviceId, reason) {
      const request: RevokeRequest = { reason };
      const res = await httpsCall({
        what: 'admin-revoke',
        method: 'POST',
        url: new URL(routes.adminRevokeDevice(deviceId), apiUrl),
        agent,
        headers,
        body: JSON.stringify(request),
      });
      if (res.status < 200 || res.status >= 300) throw httpError(res.status, problemOf(res), 'admin-revoke');
    },
    async createService(name, csrPem, profile) {
      const request: CreateServiceRequest = { name, csr: csrPem, ...(profile ? { profile } : {}) };
      const res = await httpsCall({ what: 'admin-service', method: 'POST', url: new URL(routes.adminServices, apiUrl), agent, headers, body: JSON.stringify(request) });
      if (res.status !== 201) throw httpError(res.status, problemOf(res), 'admin-service');
      return jsonOf(res, 'admin-service');
    },
    async metricsText() {
      const res = await httpsCall({ what: 'metrics', method: 'GET', url: new URL(routes.metrics, apiUrl), agent });
      if (res.status !== 200) throw httpError(res.status, problemOf(res), 'metrics');
      return res.body.toString('utf8');
    },
    close() {
      agent.destroy();
    },
  };
}
