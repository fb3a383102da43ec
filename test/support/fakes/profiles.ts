// In-memory profile writes (core/src/profiles/ports.ts ProfileStore create and update) over the shared tables, so the
// enrollment and renewal fakes see a profile's current version and each version's terms, as the Postgres stores read
// them from the profiles rows. Listing, reading back and deleting are tested against Postgres only.
import type { Profile, ProfileSpec } from '@enrolld/protocol';
import { termsOf, type ProfileStore, type ProfileWriteResult } from '@enrolld/core/profiles/ports.js';
import { profileVersionKey, type MemoryTables } from './memory-tables.js';

export function createMemoryProfileWrites(tables: MemoryTables): Pick<ProfileStore, 'create' | 'update'> {
  const versions = (name: string) => [...tables.profileVersions.values()].filter((t) => t.name === name).length;

  function store(spec: ProfileSpec, version: number): ProfileWriteResult {
    const profile: Profile = { ...spec, version, builtin: false, createdAt: tables.clock.now().toISOString() };
    const terms = termsOf(profile);
    tables.profiles.set(spec.name, terms);
    tables.profileVersions.set(profileVersionKey(spec.name, version), terms);
    return { outcome: 'stored', profile };
  }

  return {
    async create(spec) {
      if (tables.profiles.has(spec.name)) return { outcome: 'exists' };
      return store(spec, versions(spec.name) + 1);
    },
    async update(spec) {
      if (!tables.profiles.has(spec.name)) return { outcome: 'missing' };
      return store(spec, versions(spec.name) + 1);
    },
  };
}
