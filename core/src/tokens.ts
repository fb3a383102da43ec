import { randomUUID } from 'node:crypto';
import type { CreatedToken, CreateTokenRequest, IdentityKind, TokenIssue } from '@enrolld/protocol';
import { DEFAULT_ENVIRONMENT, isValidDeviceId } from '@enrolld/protocol';
import type { Clock } from './clock.js';
import { EnrollError } from './errors.js';
import type { CertificateHistory, NewToken, TokenStore } from './ports.js';
import type { ProfileService } from './profiles/profile-service.js';
import { hashSecret, newBootstrapToken } from './secrets.js';

export interface TokenIssuerDeps {
  store: TokenStore;
  clock: Clock;
  defaultTtlSeconds: number;
  profiles: Pick<ProfileService, 'resolve'>;
  /** 400 for an environment that does not exist (or was deleted). */
  environments: { require(name: string): Promise<unknown> };
}

/** Device ids for a production batch: `<prefix>0001 … <prefix>1000`, zero-padded so they sort in order. */
export function batchDeviceIds(prefix: string, count: number): string[] {
  const width = Math.max(4, String(count).length);
  const ids = Array.from({ length: count }, (_, i) => prefix + String(i + 1).padStart(width, '0'));
  const bad = ids.find((id) => !isValidDeviceId(id));
  if (bad !== undefined) throw new EnrollError('bad-request', `prefix "${prefix}" makes an invalid device id (${bad})`);
  return ids;
}

/** "a, b, c and 97 more": enough ids to act on without a 100k-id problem document. */
function someOf(ids: string[]): string {
  const shown = ids.slice(0, 5).join(', ');
  return ids.length > 5 ? `${shown} and ${ids.length - 5} more` : shown;
}

/**
 * How each id is issued, or a conflict naming the ids that need the admin's consent: a live certificate needs `replace`,
 * a device whose certificates were revoked for keyCompromise needs `afterCompromise`.
 */
function issuesFor(kind: IdentityKind, deviceIds: string[], history: Map<string, CertificateHistory>, request: Pick<TokenTerms, 'replace' | 'afterCompromise'>): TokenIssue[] {
  const live = deviceIds.filter((id) => history.get(id)?.live);
  if (live.length > 0 && !request.replace) {
    const command = kind === 'device' ? 'enrolld token create' : `enrolld ${kind} create`;
    throw new EnrollError('conflict', `${live.length} ${kind}(s) already have a live certificate (${someOf(live)}); to re-issue them, set replace (${command} --replace)`, {
      extensions: { liveDevices: live.slice(0, 100) },
    });
  }
  const compromised = deviceIds.filter((id) => history.get(id)?.compromised);
  if (compromised.length > 0 && !request.afterCompromise) {
    throw new EnrollError('conflict', `${compromised.length} device(s) were revoked for keyCompromise (${someOf(compromised)}); to re-enroll them, set afterCompromise (enrolld token create --after-compromise)`, {
      extensions: { compromisedDevices: compromised.slice(0, 100) },
    });
  }
  return deviceIds.map((id) => {
    const known = history.get(id);
    if (!known) return 'new';
    return known.compromised ? 'after-compromise' : 're-issued';
  });
}

const A_KIND: Record<IdentityKind, string> = { device: 'a device', service: 'a service', admin: 'an admin' };

/** `existing`: the kind the ids have, when one kind is known for all of them. */
function kindMismatch(ids: string[], kind: IdentityKind, existing?: IdentityKind): EnrollError {
  return new EnrollError('bad-request', `${someOf(ids)}: already ${existing ? A_KIND[existing] : `not ${A_KIND[kind]}`}; an identity keeps its kind`);
}

/** What a token is made for beyond its identities: the profile (absent → the built-in one of the kind), its lifetime, consent, environment. */
export interface TokenTerms {
  profile?: string | undefined;
  ttlSeconds?: number | undefined;
  replace?: boolean | undefined;
  afterCompromise?: boolean | undefined;
  /** The environment the identities enroll in (absent → `default`). */
  environment?: string | undefined;
  /** The device group the certificate carries (the ACL's `{group}`); device tokens only. */
  group?: string | undefined;
}

function environmentMismatch(ids: string[], environment: string): EnrollError {
  return new EnrollError('bad-request', `${someOf(ids)}: recorded in another environment than "${environment}"; an identity keeps the environment of its first token`, {
    extensions: { ids: ids.slice(0, 100) },
  });
}

export function createTokenIssuer(deps: TokenIssuerDeps) {
  /**
   * Creates one token per identity of `kind`; the raw tokens exist only in the return value. The environment must exist,
   * the token's profile must exist in it and be of that kind, and an existing identity keeps its kind and its environment.
   */
  async function issue(kind: IdentityKind, deviceIds: string[], terms: TokenTerms, actor: string): Promise<CreatedToken[]> {
    const environment = terms.environment ?? DEFAULT_ENVIRONMENT;
    await deps.environments.require(environment);
    const profile = await deps.profiles.resolve(terms.profile, kind, environment);
    const known = [...(await deps.store.identities(deviceIds))];
    const otherKind = known.filter(([, identity]) => identity.kind !== kind);
    if (otherKind.length > 0) {
      const kinds = new Set(otherKind.map(([, identity]) => identity.kind));
      throw kindMismatch(otherKind.map(([id]) => id), kind, kinds.size === 1 ? [...kinds][0] : undefined);
    }
    const otherEnvironment = known.filter(([, identity]) => identity.environment !== environment).map(([id]) => id);
    if (otherEnvironment.length > 0) throw environmentMismatch(otherEnvironment, environment);
    const issues = issuesFor(kind, deviceIds, await deps.store.certificateHistory(deviceIds), terms);
    const expiresAt = new Date(deps.clock.now().getTime() + (terms.ttlSeconds ?? deps.defaultTtlSeconds) * 1000);
    // One batch per request, single or many: `enrolld revoke --batch` and the fleet search find its devices by it.
    const batchId = randomUUID();
    const created = deviceIds.map((deviceId, i) => ({ deviceId, token: newBootstrapToken(), issuedAs: issues[i]! }));
    const records: NewToken[] = created.map(({ deviceId, token, issuedAs }) => ({
      kind,
      deviceId,
      tokenHash: hashSecret(token),
      expiresAt,
      profile: profile.name,
      environment,
      group: terms.group,
      issuedAs,
      batchId,
    }));
    const result = await deps.store.createTokens(records, actor);
    // The store checks again in its transaction: an identity of the other kind or environment created meanwhile.
    if (result.outcome === 'kind-mismatch') throw kindMismatch(result.ids, kind);
    if (result.outcome === 'environment-mismatch') throw environmentMismatch(result.ids, environment);
    if (result.outcome === 'unknown-profile') throw new EnrollError('conflict', `profile "${profile.name}" was deleted meanwhile`);
    if (result.outcome === 'unknown-environment') throw new EnrollError('conflict', `environment "${environment}" was deleted meanwhile`);
    return created.map(({ deviceId, token, issuedAs }) => ({ deviceId, token, expiresAt: expiresAt.toISOString(), issuedAs, batchId }));
  }

  return {
    /** POST /v1/admin/tokens: a device, a batch of devices, or a service. Admin identities are made by the admin use cases only. */
    async create(request: CreateTokenRequest, actor: string): Promise<CreatedToken[]> {
      const kind = 'service' in request ? 'service' : 'device';
      const deviceIds = 'service' in request ? [request.service] : 'deviceId' in request ? [request.deviceId] : batchDeviceIds(request.prefix, request.count);
      return issue(kind, deviceIds, request, actor);
    },
    issue,
    /** A device's tokens and what became of them (`enrolld token show`); undefined for an unknown device. */
    history(deviceId: string) {
      return deps.store.tokensOf(deviceId);
    },
  };
}
