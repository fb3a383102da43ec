import type { CreatedToken, CreateTokenRequest } from '@enrolld/protocol';
import { isValidDeviceId } from '@enrolld/protocol';
import type { Clock } from './clock.js';
import { EnrollError } from './errors.js';
import type { NewToken, TokenStore } from './ports.js';
import { hashSecret, newBootstrapToken } from './secrets.js';

export interface TokenIssuerDeps {
  store: TokenStore;
  clock: Clock;
  defaultTtlSeconds: number;
}

/** Device ids for a production batch: `<prefix>0001 … <prefix>1000`, zero-padded so they sort in order. */
export function batchDeviceIds(prefix: string, count: number): string[] {
  const width = Math.max(4, String(count).length);
  const ids = Array.from({ length: count }, (_, i) => prefix + String(i + 1).padStart(width, '0'));
  const bad = ids.find((id) => !isValidDeviceId(id));
  if (bad !== undefined) throw new EnrollError('bad-request', `prefix "${prefix}" makes an invalid device id (${bad})`);
  return ids;
}

export function createTokenIssuer(deps: TokenIssuerDeps) {
  return {
    /** Creates one token per device id; the raw tokens exist only in the return value. */
    async create(request: CreateTokenRequest, actor: string): Promise<CreatedToken[]> {
      const deviceIds = 'deviceId' in request ? [request.deviceId] : batchDeviceIds(request.prefix, request.count);
      const expiresAt = new Date(deps.clock.now().getTime() + (request.ttlSeconds ?? deps.defaultTtlSeconds) * 1000);
      const created = deviceIds.map((deviceId) => ({ deviceId, token: newBootstrapToken() }));
      const records: NewToken[] = created.map(({ deviceId, token }) => ({
        deviceId,
        tokenHash: hashSecret(token),
        expiresAt,
        profile: 'default',
      }));
      await deps.store.createTokens(records, actor);
      return created.map(({ deviceId, token }) => ({ deviceId, token, expiresAt: expiresAt.toISOString() }));
    },
  };
}
