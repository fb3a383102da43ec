import { DEFAULT_ENVIRONMENT, type IdentityKind, type Profile, type ProfileSpec } from '@enrolld/protocol';
import { aclProblems } from '../acl/compiled-acl.js';
import { isBuiltinProfile } from '../acl/builtin-profiles.js';
import { EnrollError } from '../errors.js';
import type { ProfileStore } from './ports.js';

// The admin use cases of profiles: every profile is validated before it is stored (a 400 names the offending rule),
// the built-in profiles stay as shipped, a profile keeps its kind across versions, and a profile still in use is
// not deleted (409). Each works in one environment (`default` when none is named): names are per environment.

/** " in environment \"dev\"" for messages, nothing for `default` (the messages of a single-environment install stay as they were). */
function inEnvironment(environment: string): string {
  return environment === DEFAULT_ENVIRONMENT ? '' : ` in environment "${environment}"`;
}

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
    list: (environment = DEFAULT_ENVIRONMENT) => store.list(environment),

    async get(name: string, environment = DEFAULT_ENVIRONMENT): Promise<Profile> {
      const profile = await store.get(name, environment);
      if (!profile) throw new EnrollError('not-found', `no profile "${name}"${inEnvironment(environment)}`);
      return profile;
    },

    async create(spec: ProfileSpec, actor: string, environment = DEFAULT_ENVIRONMENT): Promise<Profile> {
      refuseBuiltin(spec.name);
      refuseAdminKind(spec);
      validate(spec);
      const result = await store.create(spec, actor, environment);
      if (result.outcome !== 'stored') throw new EnrollError('conflict', `profile "${spec.name}" exists${inEnvironment(environment)}; update it instead`);
      return result.profile;
    },

    async update(spec: ProfileSpec, actor: string, environment = DEFAULT_ENVIRONMENT): Promise<Profile> {
      refuseBuiltin(spec.name);
      refuseAdminKind(spec);
      validate(spec);
      const current = await store.get(spec.name, environment);
      if (!current) throw new EnrollError('not-found', `no profile "${spec.name}"${inEnvironment(environment)}`);
      if (current.kind !== spec.kind) {
        throw new EnrollError('bad-request', `profile "${spec.name}" is a ${current.kind} profile; its kind cannot change`);
      }
      const result = await store.update(spec, actor, environment);
      if (result.outcome !== 'stored') throw new EnrollError('not-found', `no profile "${spec.name}"${inEnvironment(environment)}`);
      return result.profile;
    },

    async delete(name: string, actor: string, environment = DEFAULT_ENVIRONMENT): Promise<void> {
      refuseBuiltin(name);
      const result = await store.delete(name, actor, environment);
      if (result.outcome === 'missing') throw new EnrollError('not-found', `no profile "${name}"`);
      if (result.outcome === 'in-use') {
        throw new EnrollError('conflict', `profile "${name}" is used by ${result.certificates} live certificate(s) and ${result.tokens} unspent token(s)`, {
          extensions: { certificates: result.certificates, tokens: result.tokens },
        });
      }
    },

    /** The profile a new identity of `kind` gets: the named one, which must exist in its environment and be of that kind. */
    async resolve(name: string | undefined, kind: IdentityKind, environment = DEFAULT_ENVIRONMENT): Promise<Profile> {
      const wanted = name ?? kind;
      const profile = await store.get(wanted, environment);
      if (!profile) {
        const names = (await store.list(environment)).map((p) => p.name);
        throw new EnrollError('bad-request', `unknown profile "${wanted}"${inEnvironment(environment)}; existing profiles: ${names.join(', ')}`, { extensions: { profiles: names } });
      }
      if (profile.kind !== kind) {
        throw new EnrollError('bad-request', `profile "${wanted}" is for ${profile.kind}s, not ${kind}s`);
      }
      return profile;
    },
  };
}

export type ProfileService = ReturnType<typeof createProfileService>;
