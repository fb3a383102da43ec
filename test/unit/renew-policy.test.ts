// Pure pieces of rotation: RFC 7030 §3.5 challengePassword reading and matching, the expired-certificate policy, the
// MQTT filter match the broker uses to deliver a waiting hint, the sweep's jitter bounds, and the EST reply encodings.
import { describe, expect, it } from '@jest/globals';
import { EnrollError } from '@enrolld/core/errors.js';
import { assertRenewableAfterExpiry } from '@enrolld/core/renewal/expired-policy.js';
import { checkPopLinking, csrChallengePassword } from '@enrolld/core/renewal/pop-linking.js';
import { createRotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import { parseAuthorization } from '../../server/src/http/est/est-auth.js';
import { filterMatches } from '../../server/src/mqtt/renewal-topic.js';
import { buildCsr, rejectionOf } from '../support/csr-factory.js';
import { challengePasswordAttribute } from '../support/est-support.js';

describe('RFC 7030 §3.5 linking', () => {
  const binding = { type: 'tls-exporter' as const, value: Buffer.alloc(32, 9) };
  const bound = buildCsr({ cn: 'dev-1', attributes: [challengePasswordAttribute(binding.value.toString('base64'))] });
  const plain = buildCsr({ cn: 'dev-1' });

  it('reads the challengePassword, and nothing when there is none', () => {
    expect(csrChallengePassword(bound.der)).toBe(binding.value.toString('base64'));
    expect(csrChallengePassword(plain.der)).toBeUndefined();
  });

  it('applies the policy', () => {
    expect(() => checkPopLinking('required', bound.der, binding)).not.toThrow();
    expect(rejectionOf(() => checkPopLinking('required', plain.der, binding)).kind).toBe('bad-csr');
    expect(() => checkPopLinking('if-present', plain.der, binding)).not.toThrow();
    expect(rejectionOf(() => checkPopLinking('if-present', bound.der, { type: 'tls-unique', value: Buffer.alloc(12) })).kind).toBe('forbidden');
    expect(rejectionOf(() => checkPopLinking('if-present', bound.der, undefined)).kind).toBe('bad-request');
    expect(() => checkPopLinking('off', bound.der, undefined)).not.toThrow();
  });

  it('never echoes the challengePassword in a refusal', () => {
    const error = (() => {
      try {
        checkPopLinking('required', bound.der, { type: 'tls-unique', value: Buffer.alloc(12) });
      } catch (e) {
        return e as EnrollError;
      }
      throw new Error('accepted');
    })();
    expect(JSON.stringify({ detail: error.detail, extensions: error.extensions })).not.toContain(binding.value.toString('base64'));
  });
});

describe('expired-certificate policy', () => {
  const notAfter = new Date('2030-01-01T00:00:00Z');
  const later = (s: number) => new Date(notAfter.getTime() + s * 1000);
  it('refuse, grace and token each say what the device can do', () => {
    const refuse = rejectionOf(() => assertRenewableAfterExpiry({ mode: 'refuse', graceSeconds: 0 }, 'ab', notAfter, later(1), '/v1/enroll'));
    expect(refuse.kind).toBe('expired');
    expect(() => assertRenewableAfterExpiry({ mode: 'grace', graceSeconds: 60 }, 'ab', notAfter, later(60), '/v1/enroll')).not.toThrow();
    expect(rejectionOf(() => assertRenewableAfterExpiry({ mode: 'grace', graceSeconds: 60 }, 'ab', notAfter, later(61), '/v1/enroll')).kind).toBe('expired');
    expect(rejectionOf(() => assertRenewableAfterExpiry({ mode: 'token', graceSeconds: 0 }, 'ab', notAfter, later(1), '/v1/enroll')).detail).toMatch(/new bootstrap token at \/v1\/enroll/);
  });
});

describe('MQTT filter match (MQTT-4.7)', () => {
  it.each([
    ['devices/d/cert/rotate', 'devices/d/cert/rotate', true],
    ['devices/d/#', 'devices/d/cert/rotate', true],
    ['devices/d/cert/+', 'devices/d/cert/rotate', true],
    ['devices/d/+', 'devices/d/cert/rotate', false],
    ['devices/d/cert/renew/+', 'devices/d/cert/rotate', false],
    ['devices/e/#', 'devices/d/cert/rotate', false],
  ])('%s matches %s: %s', (filter, topic, expected) => {
    expect(filterMatches(filter, topic)).toBe(expected);
  });
});

describe('sweep jitter', () => {
  it('stays within the configured spread and within a quarter of the time left', async () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    const candidates = [
      { serial: 'a', deviceId: 'd-a', notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3600_000) },
      { serial: 'b', deviceId: 'd-b', notBefore: new Date(now - 3600_000), notAfter: new Date(now + 60_000) },
    ];
    const sweep = createRotationSweep({
      store: { renewalCandidates: async () => candidates, claimHint: async () => undefined },
      policy: { windowFraction: 1 / 3, jitterMaxMs: 600_000, jitterShareOfRemaining: 0.25, batchSize: 10 },
      now: () => now,
      random: () => 0.999999,
    });
    const due = await sweep.findDue();
    expect(due[0]!.delayMs).toBeLessThanOrEqual(600_000);
    expect(due[0]!.delayMs).toBeGreaterThan(590_000);
    expect(due[1]!.delayMs).toBeLessThanOrEqual(15_000);
  });
});

describe('EST HTTP authentication', () => {
  it('Basic splits at the first colon (RFC 7617 §2); Bearer is the token; anything else is 401', () => {
    const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(parseAuthorization(basic('dev-1:ebt_a:b'))).toEqual({ user: 'dev-1', token: 'ebt_a:b' });
    expect(parseAuthorization('Bearer ebt_x')).toEqual({ user: undefined, token: 'ebt_x' });
    for (const header of [undefined, 'Basic', basic(':nouser'), basic('nocolon'), 'Negotiate abc']) {
      expect(rejectionOf(() => parseAuthorization(header)).kind).toBe('unauthorized');
    }
  });
});
