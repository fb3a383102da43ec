// The EnrollmentStore, TokenStore and TokenDeviceLookup contract (core/src/ports.ts, core/src/renewal/ports.ts): one
// suite, run against every implementation, so the fakes the unit tests use behave like Postgres.
import { describe, expect, it } from '@jest/globals';
import type { BeginEnrollment, EnrollmentStore, TokenGrant, TokenStore } from '@enrolld/core/ports.js';
import type { TokenDeviceLookup } from '@enrolld/core/renewal/ports.js';
import { intentFor, newDeviceId, newTokenHash, sha256 } from './store-fixtures.js';

export interface EnrollmentPorts {
  tokens: TokenStore;
  lookup: TokenDeviceLookup;
  enrollment: EnrollmentStore;
}

export function describeEnrollmentStoreContract(name: string, makeStores: () => EnrollmentPorts): void {
  describe(`${name}: enrollment store contract`, () => {
    async function token(options: { expiresInMs?: number; group?: string } = {}) {
      const ports = makeStores();
      const deviceId = newDeviceId('contract');
      const tokenHash = newTokenHash();
      await ports.tokens.createTokens(
        [{ kind: 'device', deviceId, tokenHash, expiresAt: new Date(Date.now() + (options.expiresInMs ?? 3600_000)), profile: 'device', group: options.group }],
        'contract',
      );
      return { ...ports, deviceId, tokenHash };
    }
    const begin = (tokenHash: Buffer, csrSha256: Buffer, overrides: Partial<BeginEnrollment> = {}): BeginEnrollment => ({
      tokenHash,
      csrSha256,
      retryWindowSeconds: 3600,
      inFlightSeconds: 0,
      buildIntent: (grant) => intentFor(grant, csrSha256),
      ...overrides,
    });

    it('an unknown token is rejected as unknown', async () => {
      const { enrollment } = makeStores();
      expect(await enrollment.begin(begin(newTokenHash(), sha256('csr')))).toEqual({ outcome: 'rejected', reason: 'unknown' });
    });

    it('an expired token is rejected as expired and never builds an intent', async () => {
      const { enrollment, tokenHash } = await token({ expiresInMs: -1000 });
      let built = 0;
      const result = await enrollment.begin(begin(tokenHash, sha256('csr'), { buildIntent: (g) => (built++, intentFor(g, sha256('csr'))) }));
      expect(result).toEqual({ outcome: 'rejected', reason: 'expired' });
      expect(built).toBe(0);
    });

    it('a token is spent once: the same CSR replays the stored certificate, another CSR is a mismatch', async () => {
      const { enrollment, tokenHash, deviceId } = await token();
      const csr = sha256('csr-a');
      const first = await enrollment.begin(begin(tokenHash, csr));
      if (first.outcome !== 'begun') throw new Error(`expected begun, got ${first.outcome}`);
      expect(first.intent.deviceId).toBe(deviceId);
      const der = Buffer.from('signed');
      const stored = await enrollment.complete(first.intent.serial, der);
      expect(stored).toMatchObject({ serial: first.intent.serial, deviceId, der });

      const replay = await enrollment.begin(begin(tokenHash, csr));
      expect(replay).toEqual({ outcome: 'replay', certificate: stored });
      expect(await enrollment.begin(begin(tokenHash, sha256('csr-b')))).toEqual({ outcome: 'csr-mismatch', deviceId });
    });

    it('after the retry window a spent token is just used', async () => {
      const { enrollment, tokenHash } = await token();
      const csr = sha256('csr');
      expect((await enrollment.begin(begin(tokenHash, csr))).outcome).toBe('begun');
      expect(await enrollment.begin(begin(tokenHash, csr, { retryWindowSeconds: 0 }))).toEqual({ outcome: 'rejected', reason: 'used' });
    });

    it('a throwing buildIntent leaves the token unspent', async () => {
      const { enrollment, tokenHash } = await token();
      const csr = sha256('csr');
      await expect(enrollment.begin(begin(tokenHash, csr, { buildIntent: () => { throw new Error('names another device'); } }))).rejects.toThrow('names another device');
      expect((await enrollment.begin(begin(tokenHash, csr))).outcome).toBe('begun');
    });

    it('an intent never completed is in progress while young, then resumed with the recorded fields', async () => {
      const { enrollment, tokenHash } = await token();
      const csr = sha256('csr');
      const first = await enrollment.begin(begin(tokenHash, csr));
      if (first.outcome !== 'begun') throw new Error(`expected begun, got ${first.outcome}`);
      expect(await enrollment.begin(begin(tokenHash, csr, { inFlightSeconds: 3600 }))).toEqual({ outcome: 'in-progress' });
      const resumed = await enrollment.begin(begin(tokenHash, csr, { inFlightSeconds: 0 }));
      expect(resumed).toEqual({ outcome: 'resume', intent: first.intent });
    });

    it('the token\'s group reaches the grant and is recorded with the intent (a resume brings it back); none is undefined', async () => {
      const grouped = await token({ group: 'line-7' });
      const grants: TokenGrant[] = [];
      const csr = sha256('csr');
      const first = await grouped.enrollment.begin(begin(grouped.tokenHash, csr, { buildIntent: (g) => (grants.push(g), intentFor(g, csr)) }));
      if (first.outcome !== 'begun') throw new Error(`expected begun, got ${first.outcome}`);
      expect(grants.map((g) => g.group)).toEqual(['line-7']);
      expect(first.intent.group).toBe('line-7');
      expect(await grouped.enrollment.begin(begin(grouped.tokenHash, csr))).toEqual({ outcome: 'resume', intent: first.intent });

      const plain = await token();
      await plain.enrollment.begin(begin(plain.tokenHash, csr, { buildIntent: (g) => (grants.push(g), intentFor(g, csr)) }));
      expect(grants[1]!.group).toBeUndefined();
    });

    it('complete is idempotent: the first signature stored wins', async () => {
      const { enrollment, tokenHash } = await token();
      const first = await enrollment.begin(begin(tokenHash, sha256('csr')));
      if (first.outcome !== 'begun') throw new Error(`expected begun, got ${first.outcome}`);
      const a = await enrollment.complete(first.intent.serial, Buffer.from('first'));
      const b = await enrollment.complete(first.intent.serial, Buffer.from('second'));
      expect(b).toEqual(a);
      expect(b.der.toString()).toBe('first');
    });

    it('complete without an intent fails', async () => {
      const { enrollment } = makeStores();
      await expect(enrollment.complete('1abc', Buffer.from('x'))).rejects.toThrow();
    });

    it('looks up the device of a token without spending it', async () => {
      const { lookup, enrollment, tokenHash, deviceId } = await token();
      expect(await lookup.deviceOfToken(tokenHash)).toBe(deviceId);
      expect(await lookup.deviceOfToken(newTokenHash())).toBeUndefined();
      expect((await enrollment.begin(begin(tokenHash, sha256('csr')))).outcome).toBe('begun');
    });
  });
}
