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

export interface ProfileStore {
  /** The current version of every profile, by name. */
  list(): Promise<Profile[]>;
  get(name: string): Promise<Profile | undefined>;
  /** Version 1 (or the next number after a deleted one); 'exists' when a live profile has the name. */
  create(spec: ProfileSpec, actor: string): Promise<ProfileWriteResult>;
  /** The next version; 'missing' when no live profile has the name. */
  update(spec: ProfileSpec, actor: string): Promise<ProfileWriteResult>;
  /** Refused while an unrevoked, unexpired certificate or an unspent, unexpired token uses the profile. */
  delete(name: string, actor: string): Promise<ProfileDeleteResult>;
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
