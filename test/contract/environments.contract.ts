// The EnvironmentStore contract (core/src/environments/ports.ts), with what environments change in the token and
// revocation stores: one suite, run against every implementation, so the fakes behave like Postgres.
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { EnvironmentChain, EnvironmentStore } from '@enrolld/core/environments/ports.js';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import type { EnrollmentPorts } from './enrollment.contract.js';
import { intentFor, newDeviceId, newTokenHash } from './store-fixtures.js';

/** Stand-ins for PEM chains: the stores keep them as text and compare them, they never parse them. */
const chain = (): EnvironmentChain => ({ issuingCertificatePem: `issuing ${randomBytes(8).toString('hex')}\n`, rootCertificatePem: `root ${randomBytes(8).toString('hex')}\n` });
const environmentName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
const command = { actor: 'contract' };

export function describeEnvironmentStoreContract(name: string, makeStores: () => EnrollmentPorts & { environments: EnvironmentStore; revocation: RevocationStore }): void {
  describe(`${name}: environment store contract`, () => {
    const tokenIn = (stores: EnrollmentPorts, environment: string | undefined, deviceId: string, tokenHash = newTokenHash()) =>
      stores.tokens.createTokens([{ kind: 'device', deviceId, tokenHash, expiresAt: new Date(Date.now() + 3600_000), profile: 'device', environment }], 'contract');

    it('create: made once under its name (the chain recorded as given), listed and read back; the name is then taken', async () => {
      const { environments } = makeStores();
      const name = environmentName('c');
      const made = chain();
      let materialized = 0;
      const created = await environments.create({ name, ownRoot: true, ...command }, async () => (materialized++, made));
      expect(created).toMatchObject({ outcome: 'created', environment: { name, ownRoot: true, ...made, createdBy: 'contract', deletedAt: null } });
      expect(await environments.get(name)).toMatchObject({ name, ...made });
      expect((await environments.list()).map((e) => e.name)).toContain(name);
      expect(await environments.create({ name, ownRoot: false, ...command }, async () => (materialized++, chain()))).toEqual({ outcome: 'exists', deleted: false });
      expect(materialized).toBe(1);
      expect(await environments.get(environmentName('never'))).toBeUndefined();
    });

    it('tokens: an identity keeps the environment of its first token; an unknown environment makes none', async () => {
      const stores = makeStores();
      const name = environmentName('t');
      await stores.environments.create({ name, ownRoot: false, ...command }, async () => chain());
      const deviceId = newDeviceId('contract-env');
      expect(await tokenIn(stores, name, deviceId)).toEqual({ outcome: 'created' });
      expect(await stores.tokens.identities([deviceId])).toEqual(new Map([[deviceId, { kind: 'device', environment: name }]]));
      expect(await tokenIn(stores, undefined, deviceId)).toEqual({ outcome: 'environment-mismatch', ids: [deviceId] });
      expect(await tokenIn(stores, environmentName('nowhere'), newDeviceId('contract-env'))).toEqual({ outcome: 'unknown-environment' });
    });

    it('delete: refused with the counts while live certificates or unspent tokens belong to it, then gone for good', async () => {
      const stores = makeStores();
      const name = environmentName('d');
      await stores.environments.create({ name, ownRoot: false, ...command }, async () => chain());
      const deviceId = newDeviceId('contract-env');
      const tokenHash = newTokenHash();
      await tokenIn(stores, name, deviceId, tokenHash);
      expect(await stores.environments.delete(name, command)).toEqual({ outcome: 'in-use', certificates: 0, tokens: 1 });
      const csr = randomBytes(32);
      const begun = await stores.enrollment.begin({ tokenHash, csrSha256: csr, retryWindowSeconds: 60, inFlightSeconds: 0, buildIntent: (g) => intentFor(g, csr) });
      if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
      expect(begun.intent.environment).toBe(name);
      expect(await stores.enrollment.complete(begun.intent.serial, Buffer.from('signed'))).toMatchObject({ environment: name });
      expect(await stores.environments.delete(name, command)).toEqual({ outcome: 'in-use', certificates: 1, tokens: 0 });
      await stores.revocation.revokeDevice(deviceId, { reasonCode: 1, actor: 'contract' });
      expect(await stores.environments.delete(name, command)).toEqual({ outcome: 'deleted' });
      expect(await stores.environments.delete(name, command)).toEqual({ outcome: 'missing' });
      expect((await stores.environments.get(name))?.deletedAt).toBeInstanceOf(Date);
      expect((await stores.environments.list()).map((e) => e.name)).not.toContain(name);
      expect(await stores.environments.create({ name, ownRoot: false, ...command }, async () => chain())).toEqual({ outcome: 'exists', deleted: true });
      expect(await tokenIn(stores, name, newDeviceId('contract-env'))).toEqual({ outcome: 'unknown-environment' });
    });

    it('a CRL per environment: each lists its own revocations and covers its own seqs', async () => {
      const stores = makeStores();
      const name = environmentName('r');
      await stores.environments.create({ name, ownRoot: false, ...command }, async () => chain());
      const enroll = async (environment: string | undefined) => {
        const deviceId = newDeviceId('contract-crl');
        const tokenHash = newTokenHash();
        await tokenIn(stores, environment, deviceId, tokenHash);
        const csr = randomBytes(32);
        const begun = await stores.enrollment.begin({ tokenHash, csrSha256: csr, retryWindowSeconds: 60, inFlightSeconds: 0, buildIntent: (g) => intentFor(g, csr) });
        if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
        await stores.enrollment.complete(begun.intent.serial, Buffer.from('signed'));
        const revoked = await stores.revocation.revokeDevice(deviceId, { reasonCode: 1, actor: 'contract' });
        if (revoked.outcome !== 'revoked') throw new Error(`expected revoked, got ${revoked.outcome}`);
        expect(revoked.revoked[0]!.environment).toBe(environment ?? 'default');
        return revoked.revoked[0]!;
      };
      const inEnv = await enroll(name);
      const inDefault = await enroll(undefined);
      expect(await stores.revocation.lastSeq(name)).toBe(inEnv.seq);
      const validity = { thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3600_000) };
      const listed = async (environment: string) => {
        let serials: string[] = [];
        const crl = await stores.revocation.regenerateCrl((input) => ((serials = input.entries.map((e) => e.serial)), Buffer.from(`crl-${input.crlNumber}`)), validity, environment);
        return { crl, serials };
      };
      const envCrl = await listed(name);
      expect(envCrl.serials).toEqual([inEnv.serial]);
      expect(envCrl.crl.coversSeq).toBe(inEnv.seq);
      const defaultCrl = await listed('default');
      expect(defaultCrl.serials).toContain(inDefault.serial);
      expect(defaultCrl.serials).not.toContain(inEnv.serial);
      expect(defaultCrl.crl.crlNumber).toBeGreaterThan(envCrl.crl.crlNumber);
      expect(await stores.revocation.latestCrl(name)).toEqual(envCrl.crl);
    });

    it('the chain of `default` is recorded once; another one is a mismatch naming the recorded one', async () => {
      const { environments } = makeStores();
      // Before it is recorded (a database no API has started on) `default` has no chain to read.
      expect(await environments.get('default')).toBeUndefined();
      const first = chain();
      expect(await environments.recordDefaultChain(first)).toEqual({ outcome: 'recorded' });
      expect(await environments.recordDefaultChain(first)).toEqual({ outcome: 'recorded' });
      expect(await environments.get('default')).toMatchObject({ name: 'default', ...first, createdBy: 'migration' });
      expect(await environments.recordDefaultChain(chain())).toEqual({ outcome: 'mismatch', recorded: first });
    });
  });
}
