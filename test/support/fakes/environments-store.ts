// In-memory EnvironmentStore (core/src/environments/ports.ts) over the shared tables: the same outcomes as
// db/src/environment-store.ts, checked by test/contract/environments.contract.ts.
import type { EnvironmentRecord, EnvironmentStore } from '@enrolld/core/environments/ports.js';
import type { MemoryTables } from './memory-tables.js';

type Row = MemoryTables['environments'] extends Map<string, infer R> ? R : never;

const recordOf = (row: Row): EnvironmentRecord | undefined =>
  row.issuingCertificatePem === null || row.rootCertificatePem === null
    ? undefined
    : { ...row, issuingCertificatePem: row.issuingCertificatePem, rootCertificatePem: row.rootCertificatePem };

const samePem = (a: string, b: string) => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

export function createMemoryEnvironmentStore(tables: MemoryTables): EnvironmentStore {
  return {
    async list() {
      return [...tables.environments.values()]
        .filter((row) => row.deletedAt === null)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(recordOf)
        .filter((e): e is EnvironmentRecord => e !== undefined);
    },

    async get(name) {
      const row = tables.environments.get(name);
      return row ? recordOf(row) : undefined;
    },

    async create(input, materialize) {
      const taken = tables.environments.get(input.name);
      if (taken) return { outcome: 'exists', deleted: taken.deletedAt !== null };
      const chain = await materialize();
      // As the advisory lock does in Postgres: a create of the same name that got here first wins.
      if (tables.environments.has(input.name)) return { outcome: 'exists', deleted: false };
      const row: Row = { name: input.name, ownRoot: input.ownRoot, ...chain, createdAt: tables.clock.now(), createdBy: input.actor, deletedAt: null };
      tables.environments.set(input.name, row);
      return { outcome: 'created', environment: recordOf(row)! };
    },

    async delete(name) {
      const row = tables.environments.get(name);
      if (!row || row.deletedAt !== null) return { outcome: 'missing' };
      const now = tables.clock.now();
      const certificates = [...tables.certificates.values()].filter((c) => c.environment === name && !c.revokedAt && c.notAfter > now).length;
      const tokens = [...tables.tokens.values()].filter((t) => tables.devices.get(t.deviceId)?.environment === name && !t.usedAt && t.expiresAt > now).length;
      if (certificates > 0 || tokens > 0) return { outcome: 'in-use', certificates, tokens };
      row.deletedAt = now;
      return { outcome: 'deleted' };
    },

    async recordDefaultChain(chain) {
      const row = tables.environments.get('default')!;
      if (row.issuingCertificatePem === null || row.rootCertificatePem === null) {
        Object.assign(row, chain);
        return { outcome: 'recorded' };
      }
      const recorded = { issuingCertificatePem: row.issuingCertificatePem, rootCertificatePem: row.rootCertificatePem };
      return samePem(recorded.issuingCertificatePem, chain.issuingCertificatePem) && samePem(recorded.rootCertificatePem, chain.rootCertificatePem)
        ? { outcome: 'recorded' }
        : { outcome: 'mismatch', recorded };
    },
  };
}
