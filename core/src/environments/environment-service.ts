import { DEFAULT_ENVIRONMENT } from '@enrolld/protocol';
import { EnrollError } from '../errors.js';
import type { EnvironmentCaFactory, EnvironmentCommand, EnvironmentRecord, EnvironmentStore } from './ports.js';

// The admin use cases of environments (docs/architecture.md §5): create one with its own issuing CA (under the shared
// root, or with a root of its own), list, show, and delete one nothing live belongs to any more. `default` exists from
// the first migration on and is never deleted. Names follow the identity rule (checked at the edge) and are never
// given out twice, because a deleted environment's certificates, tokens and CRLs keep naming it.

/** Issuing CA then root, as a device or a broker of the environment needs it. */
export function chainOf(environment: Pick<EnvironmentRecord, 'issuingCertificatePem' | 'rootCertificatePem'>): string {
  return environment.issuingCertificatePem + environment.rootCertificatePem;
}

export interface EnvironmentServiceDeps {
  store: EnvironmentStore;
  caFactory: EnvironmentCaFactory;
  /** The chain of `default` as this process holds it (its home's CA): served without a database round trip. */
  defaultChainPem?: string | undefined;
}

export function createEnvironmentService(deps: EnvironmentServiceDeps) {
  const { store } = deps;

  async function unknown(name: string): Promise<EnrollError> {
    const names = (await store.list()).map((e) => e.name);
    return new EnrollError('bad-request', `unknown environment "${name}"; existing environments: ${names.join(', ')}`, { extensions: { environments: names } });
  }

  /**
   * An environment a request reads published material of (its CA chain, its CRL): live, or deleted while relying
   * parties may still need its CRL. 400 when the name was never created.
   */
  async function published(name: string): Promise<EnvironmentRecord> {
    const environment = await store.get(name);
    if (!environment) throw await unknown(name);
    return environment;
  }

  return {
    list: () => store.list(),

    /** A live environment, or 404. */
    async get(name: string): Promise<EnvironmentRecord> {
      const environment = await store.get(name);
      if (!environment || environment.deletedAt) throw new EnrollError('not-found', `no environment "${name}"`);
      return environment;
    },

    /** A live environment named by a request (a query, a body field): 400 naming the ones that exist otherwise. */
    async require(name: string): Promise<void> {
      // `default` always exists (the migration made it, nothing deletes it), recorded chain or not.
      if (name === DEFAULT_ENVIRONMENT) return;
      const environment = await store.get(name);
      if (!environment || environment.deletedAt) throw await unknown(name);
    },

    published,

    /**
     * The chain (issuing CA then root, PEM) of an environment whose material is published: `default`'s from memory,
     * so GET /v1/ca and EST cacerts keep answering while Postgres does not; another's as recorded.
     */
    async chain(name: string): Promise<string> {
      if (name === DEFAULT_ENVIRONMENT && deps.defaultChainPem !== undefined) return deps.defaultChainPem;
      return chainOf(await published(name));
    },

    async create(input: { name: string; ownRoot: boolean }, command: EnvironmentCommand): Promise<EnvironmentRecord> {
      const result = await store.create({ ...input, ...command }, () => deps.caFactory.create(input.name, { ownRoot: input.ownRoot }));
      if (result.outcome === 'exists') {
        throw new EnrollError(
          'conflict',
          result.deleted
            ? `environment "${input.name}" was deleted; its records still name it, so the name is not given out again`
            : `environment "${input.name}" exists`,
        );
      }
      return result.environment;
    },

    async delete(name: string, command: EnvironmentCommand): Promise<void> {
      if (name === DEFAULT_ENVIRONMENT) throw new EnrollError('forbidden', `the environment "${DEFAULT_ENVIRONMENT}" cannot be deleted`);
      const result = await store.delete(name, command);
      if (result.outcome === 'missing') throw new EnrollError('not-found', `no environment "${name}"`);
      if (result.outcome === 'in-use') {
        throw new EnrollError(
          'conflict',
          `environment "${name}" still has ${result.certificates} live certificate(s) and ${result.tokens} unspent token(s); revoke them (or let them expire) first`,
          { extensions: { certificates: result.certificates, tokens: result.tokens } },
        );
      }
    },
  };
}

export type EnvironmentService = ReturnType<typeof createEnvironmentService>;
