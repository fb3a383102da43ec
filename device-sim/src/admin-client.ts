// The admin API as the simulator uses it: bootstrap tokens in bulk, and revocation (DESIGN.md §5).
import { Agent } from 'node:https';
import { createdTokenSchema, routes } from '@enrolld/protocol';
import type { CreatedToken, RevocationReason } from '@enrolld/protocol';
import { httpsCall, jsonOf, problemOf } from './https-request.js';
import { httpError } from './sim-error.js';

export interface AdminClient {
  createTokens(prefix: string, count: number, ttlSeconds?: number): Promise<CreatedToken[]>;
  revokeDevice(deviceId: string, reason: RevocationReason): Promise<void>;
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
        const res = await httpsCall({
          what: 'admin-tokens',
          method: 'POST',
          url: new URL(routes.adminTokens, apiUrl),
          agent,
          headers,
          body: JSON.stringify({ prefix: batchPrefix, count: n, ...(ttlSeconds ? { ttlSeconds } : {}) }),
        });
        if (res.status !== 201 && res.status !== 200) throw httpError(res.status, problemOf(res), 'admin-tokens');
        const body = jsonOf(res, 'admin-tokens');
        const list = createdTokenSchema.array().parse(Array.isArray(body) ? body : (body as { tokens?: unknown }).tokens);
        out.push(...list);
        done += n;
      }
      return out;
    },
    async revokeDevice(deviceId, reason) {
      const res = await httpsCall({
        what: 'admin-revoke',
        method: 'POST',
        url: new URL(routes.adminRevokeDevice(deviceId), apiUrl),
        agent,
        headers,
        body: JSON.stringify({ reason }),
      });
      if (res.status < 200 || res.status >= 300) throw httpError(res.status, problemOf(res), 'admin-revoke');
    },
    close() {
      agent.destroy();
    },
  };
}
