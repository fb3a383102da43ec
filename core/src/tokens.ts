import type { CreatedToken, CreateTokenRequest } from '@enrolld/protocol';
import { isValidDeviceId } from '@enrolld/protocol';
import type { Clock } from './clock.js';
import { EnrollError } from './errors.js';
import type { NewToken, TokenStore } from './ports.js';
import type { ProfileService } from './profiles/profile-service.js';
import { hashSecret, newBootstrapToken } from './secrets.js';

export interface TokenIssuerDeps {
  store: TokenStore;
  clock: Clock;
  defaultTtlSeconds: number;
  profiles: Pick<ProfileService, 'resolve'>;
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
    /**
     * Creates one token per identity; the raw tokens exist only in the return value. The token's profile must exist and
     * be of the identity's kind, and an existing identity keeps its kind.
     */
    async create(request: CreateTokenRequest, actor: string): Promise<CreatedToken[]> {
      const kind = 'service' in request ? 'service' : 'device';
      const deviceIds = 'service' in request ? [request.service] : 'deviceId' in request ? [request.deviceId] : batchDeviceIds(request.prefix, request.count);
      const profile = await deps.profiles.resolve(request.profile, kind);
      const expiresAt = new Date(deps.clock.now().getTime() + (request.ttlSeconds ?? deps.defaultTtlSeconds) * 1000);
      const created = deviceIds.map((deviceId) => ({ deviceId, token: newBootstrapToken() }));
      const records: NewToken[] = created.map(({ deviceId, token }) => ({
        kind,
        deviceId,
        tokenHash: hashSecret(token),
        expiresAt,
        profile: profile.name,
      }));
      const result = await deps.store.createTokens(records, actor);
      if (result.outcome === 'kind-mismatch') {
        const shown = result.ids.slice(0, 5).join(', ');
        throw new EnrollError('bad-request', `${shown}${result.ids.length > 5 ? ', …' : ''}: already ${kind === 'device' ? 'a service' : 'a device'}; an identity keeps its kind`);
      }
      if (result.outcome === 'unknown-profile') throw new EnrollError('conflict', `profile "${profile.name}" was deleted meanwhile`);
      return created.map(({ deviceId, token }) => ({ deviceId, token, expiresAt: expiresAt.toISOString() }));
    },
  };
}
