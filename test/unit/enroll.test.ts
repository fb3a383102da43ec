// The enrollment use case (core/src/enroll.ts) on the in-memory stores and a real issuing CA: a token is spent once,
// a retry with the same CSR gets the same certificate, another CSR is a conflict, a bad CSR never spends the token.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { createEnrollment } from '@enrolld/core/enroll.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { hashSecret } from '@enrolld/core/secrets.js';
import { createTestIssuingCa, makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryTables } from '../support/fakes/memory-tables.js';
import { singleEnvironmentCas } from '../support/fakes/environments.js';
import { createMemoryProfileWrites } from '../support/fakes/profiles.js';

let ca: DeviceIssuingCa;
beforeAll(async () => {
  ({ ca } = await createTestIssuingCa({ serverNames: ['enrolld.test'] }));
});

const policy = { certificateLifetimeSeconds: 3600, backdateSeconds: 60, renewalWindowFraction: 1 / 3, retryWindowSeconds: 600, inFlightSeconds: 30 };

async function setup() {
  const clock = createManualClock();
  const tables = createMemoryTables(clock);
  const outcomes: string[] = [];
  const enrollment = createEnrollment({ store: createMemoryEnrollmentStore(tables), cas: singleEnvironmentCas(ca), clock, policy, onOutcome: (o) => outcomes.push(o) });
  const deviceId = randomDeviceId('unit');
  const token = `token-${deviceId}`;
  await createMemoryTokenStore(tables).createTokens([{ kind: 'device', deviceId, tokenHash: hashSecret(token), expiresAt: new Date(clock.now().getTime() + 3600_000), profile: 'device' }], 'unit');
  return { clock, tables, enrollment, deviceId, token, outcomes };
}

const kindOf = (error: unknown) => (error instanceof EnrollError ? error.kind : String(error));

describe('enroll', () => {
  it('issues a certificate for the CSR\'s key and the token\'s device, and spends the token', async () => {
    const { enrollment, deviceId, token, tables, outcomes } = await setup();
    const csr = await makeCsr({ cn: deviceId });
    const { response, replayed } = await enrollment.enroll({ token, csr: csr.pem });
    expect(replayed).toBe(false);
    expect(response.deviceId).toBe(deviceId);
    expect(new X509Certificate(response.certificate).checkPrivateKey(csr.privateKey)).toBe(true);
    expect(tables.certificates.get(response.serial)?.der).not.toBeNull();
    expect([...tables.tokens.values()][0]?.usedAt).not.toBeNull();
    expect(outcomes).toEqual(['issued']);
  });

  it('the answer says when renewal is due: the last renewalWindowFraction of the lifetime, the profile\'s or else the default', async () => {
    const { enrollment, deviceId, token, tables } = await setup();
    const span = (r: { certificate: string }) => {
      const cert = new X509Certificate(r.certificate);
      return [Date.parse(cert.validFrom), Date.parse(cert.validTo)] as const;
    };
    const plain = (await enrollment.enroll({ token, csr: (await makeCsr({ cn: deviceId })).pem })).response;
    const [notBefore, notAfter] = span(plain);
    expect(Date.parse(plain.renewAfter)).toBe(notAfter - Math.round((notAfter - notBefore) / 3));

    await createMemoryProfileWrites(tables).create({ name: 'quarter', kind: 'device', renewalWindowFraction: 0.25, acl: [] }, 'unit');
    const quarterId = randomDeviceId('quarter');
    await createMemoryTokenStore(tables).createTokens([{ kind: 'device', deviceId: quarterId, tokenHash: hashSecret(`t-${quarterId}`), expiresAt: new Date(tables.clock.now().getTime() + 3600_000), profile: 'quarter' }], 'unit');
    const quarter = (await enrollment.enroll({ token: `t-${quarterId}`, csr: (await makeCsr({ cn: quarterId })).pem })).response;
    const [qBefore, qAfter] = span(quarter);
    expect(Date.parse(quarter.renewAfter)).toBe(qAfter - Math.round((qAfter - qBefore) * 0.25));
  });

  it('a retry with the same CSR gets the same certificate; another CSR is a conflict; after the window the token is used', async () => {
    const { enrollment, deviceId, token, clock, outcomes } = await setup();
    const csr = await makeCsr({ cn: deviceId });
    const first = await enrollment.enroll({ token, csr: csr.pem });
    const again = await enrollment.enroll({ token, csr: csr.pem });
    expect(again).toEqual({ response: first.response, replayed: true });
    const other = await makeCsr({ cn: deviceId });
    expect(kindOf(await enrollment.enroll({ token, csr: other.pem }).catch((e: unknown) => e))).toBe('conflict');
    clock.advance((policy.retryWindowSeconds + 1) * 1000);
    expect(kindOf(await enrollment.enroll({ token, csr: csr.pem }).catch((e: unknown) => e))).toBe('unauthorized');
    expect(outcomes).toEqual(['issued', 'replayed', 'rejected', 'rejected']);
  });

  it('an unknown or expired token is unauthorized', async () => {
    const { enrollment, deviceId, token, clock } = await setup();
    const csr = await makeCsr({ cn: deviceId });
    expect(kindOf(await enrollment.enroll({ token: 'not-a-token', csr: csr.pem }).catch((e: unknown) => e))).toBe('unauthorized');
    clock.advance(3601_000);
    expect(kindOf(await enrollment.enroll({ token, csr: csr.pem }).catch((e: unknown) => e))).toBe('unauthorized');
  });

  it('a CSR naming another device or a malformed CSR leaves the token unspent', async () => {
    const { enrollment, deviceId, token, tables } = await setup();
    const foreign = await makeCsr({ cn: randomDeviceId('someone-else') });
    expect(kindOf(await enrollment.enroll({ token, csr: foreign.pem }).catch((e: unknown) => e))).toBe('identity-mismatch');
    expect(kindOf(await enrollment.enroll({ token, csr: 'not a csr' }).catch((e: unknown) => e))).toBe('bad-csr');
    expect([...tables.tokens.values()][0]?.usedAt).toBeNull();
    const own = await makeCsr({ cn: deviceId });
    expect((await enrollment.enroll({ token, csr: own.pem })).replayed).toBe(false);
  });
});
