import type { IdentityKind, Profile } from '@enrolld/protocol';
import { compileAccessWindow, type AccessWindow } from './access-window.js';
import { aclProblems, compileAcl, type CompiledAcl } from './compiled-acl.js';

// What a broker knows of the profiles (docs/architecture.md §6): each profile's current version with its ACL and its
// access window compiled once when it loads. Sessions look their profile up by name per packet, so a new version
// applies to every session that uses it from its next packet on. A profile that does not validate (it never should:
// the API validates before it stores; a time zone this runtime's ICU lacks is the one way in) is left out, so its
// certificates are refused at CONNECT rather than given rules nobody checked.

export interface ProfileAcl {
  name: string;
  version: number;
  kind: IdentityKind;
  acl: CompiledAcl;
  /** When its identities may be connected; undefined: at any time. */
  access: AccessWindow | undefined;
}

export interface ProfileChange {
  name: string;
  /** The new current version; undefined when the profile was deleted. */
  current: ProfileAcl | undefined;
}

export function createProfileAcls() {
  const byName = new Map<string, ProfileAcl>();

  function compiled(profile: Profile): ProfileAcl | undefined {
    if (aclProblems(profile.kind, profile.acl).length > 0) return undefined;
    let access: AccessWindow | undefined;
    try {
      access = profile.access === undefined ? undefined : compileAccessWindow(profile.access);
    } catch {
      return undefined;
    }
    return { name: profile.name, version: profile.version, kind: profile.kind, acl: compileAcl(profile.acl), access };
  }

  /** Applies one profile's current record (undefined: deleted). Returns the change, or undefined when there is none. */
  function apply(name: string, profile: Profile | undefined): ProfileChange | undefined {
    const before = byName.get(name);
    if (profile && before && before.version === profile.version) return undefined;
    const current = profile ? compiled(profile) : undefined;
    if (current) byName.set(name, current);
    else byName.delete(name);
    return before === undefined && current === undefined ? undefined : { name, current };
  }

  return {
    get: (name: string): ProfileAcl | undefined => byName.get(name),
    apply,
    /** Applies a full list of current profiles; the changes are those of profiles that changed or are gone. */
    load(profiles: Profile[]): ProfileChange[] {
      const changes: ProfileChange[] = [];
      const seen = new Set<string>();
      for (const profile of profiles) {
        seen.add(profile.name);
        const change = apply(profile.name, profile);
        if (change) changes.push(change);
      }
      for (const name of [...byName.keys()]) {
        if (seen.has(name)) continue;
        const change = apply(name, undefined);
        if (change) changes.push(change);
      }
      return changes;
    },
    size: () => byName.size,
  };
}

export type ProfileAcls = ReturnType<typeof createProfileAcls>;

/** Where a broker reads profiles (db/src/profile-store.ts) and hears of changes (NOTIFY on enrolld_profile). */
export interface ProfileSource {
  list(): Promise<Profile[]>;
  get(name: string): Promise<Profile | undefined>;
}

export interface ProfileFeedHandlers {
  onChanged(name: string): void;
  /** false when changes may have been missed; true once listening again (the consumer reloads every profile). */
  onConnection(connected: boolean, error?: unknown): void;
}

export interface ProfileFeed {
  start(handlers: ProfileFeedHandlers): Promise<void>;
  stop(): Promise<void>;
}
