import type { IdentityKind, Profile, ProfileSpec } from '@enrolld/protocol';
import { aclProblems } from '../acl/compiled-acl.js';
import { isBuiltinProfile } from '../acl/builtin-profiles.js';
import { EnrollError } from '../errors.js';
import type { ProfileStore } from './ports.js';

// The admin use cases of profiles: every profile is validated before it is stored (a 400 names the offending rule),
// the built-in profiles stay as shipped, a profile keeps its kind across versions, and a profile still in use is
// not deleted (409).

export function createProfileService(deps: { store: ProfileStore }) {
  const { store } = deps;

  function validate(spec: ProfileSpec): void {
    const problems = aclProblems(spec.kind, spec.acl);
    if (problems.length > 0) {
      const first = problems[0]!;
      throw new EnrollError('bad-request', `acl[${first.rule}] ${JSON.stringify(first.filter)}: ${first.problem}`, {
        extensions: { rules: problems },
      });
    }
  }

  function refuseBuiltin(name: string): void {
    if (isBuiltinProfile(name)) throw new EnrollError('forbidden', `the built-in profile "${name}" cannot be changed or deleted`);
  }

  /** Admin certificates carry no rights of their own (the role is in the admin record): one built-in profile is enough. */
  function refuseAdminKind(spec: ProfileSpec): void {
    if (spec.kind === 'admin') throw new EnrollError('bad-request', 'admin certificates are issued under the built-in "admin" profile only; a profile is for devices or services');
  }

  return {
    list: () => store.list(),

    async get(name: string): Promise<Profile> {
      const profile = await store.get(name);
      if (!profile) throw new EnrollError('not-found', `no profile "${name}"`);
      return profile;
    },

    async create(spec: ProfileSpec, actor: string): Promise<Profile> {
      refuseBuiltin(spec.name);
      refuseAdminKind(spec);
      validate(spec);
      const result = await store.create(spec, actor);
      if (result.outcome !== 'stored') throw new EnrollError('conflict', `profile "${spec.name}" exists; update it instead`);
      return result.profile;
    },

    async update(spec: ProfileSpec, actor: string): Promise<Profile> {
      refuseBuiltin(spec.name);
      refuseAdminKind(spec);
      validate(spec);
      const current = await store.get(spec.name);
      if (!current) throw new EnrollError('not-found', `no profile "${spec.name}"`);
      if (current.kind !== spec.kind) {
        throw new EnrollError('bad-request', `profile "${spec.name}" is a ${current.kind} profile; its kind cannot change`);
      }
      const result = await store.update(spec, actor);
      if (result.outcome !== 'stored') throw new EnrollError('not-found', `no profile "${spec.name}"`);
      return result.profile;
    },

    async delete(name: string, actor: string): Promise<void> {
      refuseBuiltin(name);
      const result = await store.delete(name, actor);
      if (result.outcome === 'missing') throw new EnrollError('not-found', `no profile "${name}"`);
      if (result.outcome === 'in-use') {
        throw new EnrollError('conflict', `profile "${name}" is used by ${result.certificates} live certificate(s) and ${result.tokens} unspent token(s)`, {
          extensions: { certificates: result.certificates, tokens: result.tokens },
        });
      }
    },

    /** The profile a new identity of `kind` gets: the named one, which must exist and be of that kind. */
    async resolve(name: string | undefined, kind: IdentityKind): Promise<Profile> {
      const wanted = name ?? kind;
      const profile = await store.get(wanted);
      if (!profile) {
        const names = (await store.list()).map((p) => p.name);
        throw new EnrollError('bad-request', `unknown profile "${wanted}"; existing profiles: ${names.join(', ')}`, { extensions: { profiles: names } });
      }
      if (profile.kind !== kind) {
        throw new EnrollError('bad-request', `profile "${wanted}" is for ${profile.kind}s, not ${kind}s`);
      }
      return profile;
    },
  };
}

export type ProfileService = ReturnType<typeof createProfileService>;
