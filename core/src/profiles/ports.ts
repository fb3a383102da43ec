import type { IdentityKind, KeyType, Profile, ProfileSpec } from '@enrolld/protocol';

// Ports of the profile catalog (docs/architecture.md §5). db/src/profile-store.ts implements them.

/** What issuance needs of a profile: the version it writes into the certificate and the terms it signs by. */
export interface ProfileTerms {
  name: string;
  version: number;
  kind: IdentityKind;
  lifetimeSeconds?: number | undefined;
  keyTypes?: readonly KeyType[] | undefined;
  /** The share of the lifetime, counted back from notAfter, in which renewal is due; absent → RENEWAL_WINDOW. */
  renewalWindowFraction?: number | undefined;
}

export type ProfileWriteResult = { outcome: 'stored'; profile: Profile } | { outcome: 'exists' } | { outcome: 'missing' };
export type ProfileDeleteResult = { outcome: 'deleted' } | { outcome: 'missing' } | { outcome: 'in-use'; certificates: number; tokens: number };

/**
 * Profiles are per environment (names too); every method works in one, `default` when none is named. A broker reads
 * only its own environment's (profileSourceIn).
 */
export interface ProfileStore {
  /** The current version of every profile, by name. */
  list(environment?: string): Promise<Profile[]>;
  get(name: string, environment?: string): Promise<Profile | undefined>;
  /** Version 1 (or the next number after a deleted one); 'exists' when a live profile has the name. */
  create(spec: ProfileSpec, actor: string, environment?: string): Promise<ProfileWriteResult>;
  /** The next version; 'missing' when no live profile has the name. */
  update(spec: ProfileSpec, actor: string, environment?: string): Promise<ProfileWriteResult>;
  /** Refused while an unrevoked, unexpired certificate or an unspent, unexpired token uses the profile. */
  delete(name: string, actor: string, environment?: string): Promise<ProfileDeleteResult>;
}

/** The profiles of one environment, as a broker serving it reads them. */
export function profileSourceIn(store: Pick<ProfileStore, 'list' | 'get'>, environment: string): { list(): Promise<Profile[]>; get(name: string): Promise<Profile | undefined> } {
  return { list: () => store.list(environment), get: (name) => store.get(name, environment) };
}

export function termsOf(profile: Pick<Profile, 'name' | 'version' | 'kind' | 'lifetimeSeconds' | 'keyTypes' | 'renewalWindowFraction'>): ProfileTerms {
  return {
    name: profile.name,
    version: profile.version,
    kind: profile.kind,
    lifetimeSeconds: profile.lifetimeSeconds,
    keyTypes: profile.keyTypes,
    renewalWindowFraction: profile.renewalWindowFraction,
  };
}
