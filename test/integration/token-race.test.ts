import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPgEnrollmentStore, createPgEnvironmentStore, createPgProfileStore, createPgTokenStore, createPool } from '@enrolld/db';
import type pg from 'pg';
import { createCaMaterial, createIssuingCa } from '@enrolld/core/ca/index.js';
import { createPrivateKey } from 'node:crypto';
import { systemClock } from '@enrolld/core/clock.js';
import { createEnrollment, type Enrollment } from '@enrolld/core/enroll.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { createTokenIssuer } from '@enrolld/core/tokens.js';
import { createProfileService } from '@enrolld/core/profiles/profile-service.js';
import { createEnvironmentService } from '@enrolld/core/environments/environment-service.js';
import { makeCsr } from '../support/csr-factory.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { uniqueDeviceId } from '../support/server-harness.js';
import { noEnvironmentCreation, singleEnvironmentCas } from '../support/fakes/environments.js';

const CONCURRENT = 100;
const ROUNDS = Number(process.env.TOK02_ROUNDS ?? 100);

describe('TOK-02: one token, 100 concurrent uses, two API replicas with separate pools', () => {
  let db: TestDatabase;
  let replicaPools: pg.Pool[];
  let replicas: Enrollment[];
  let csrs: string[];

  beforeAll(async () => {
    db = await createTestDatabase();
    const m = await createCaMaterial({ now: new Date(), serverNames: [] });
    const ca = createIssuingCa({ issuingCertificatePem: m.issuingCertPem, issuingPrivateKey: createPrivateKey(m.issuingKeyPem), rootCertificatePem: m.rootCertPem });
    replicaPools = [createPool({ connectionString: db.url, max: 20 }), createPool({ connectionString: db.url, max: 20 })];
    replicas = replicaPools.map((pool) =>
      createEnrollment({
        store: createPgEnrollmentStore(pool),
        cas: singleEnvironmentCas(ca),
        clock: systemClock,
        policy: { certificateLifetimeSeconds: 86_400, backdateSeconds: 60, renewalWindowFraction: 1 / 3, retryWindowSeconds: 3600, inFlightSeconds: 10 },
      }),
    );
    // Empty-subject CSRs are valid for any device, so the same 100 serve every round.
    csrs = await Promise.all(Array.from({ length: CONCURRENT }, async () => (await makeCsr({})).pem));
  });
  afterAll(async () => {
    await Promise.all(replicaPools.map((p) => p.end()));
    await db.drop();
  });

  it(`has exactly one winner in each of ${ROUNDS} rounds`, async () => {
    const tokens = createTokenIssuer({ store: createPgTokenStore(db.pool), clock: systemClock, defaultTtlSeconds: 3600, profiles: createProfileService({ store: createPgProfileStore(db.pool) }), environments: createEnvironmentService({ store: createPgEnvironmentStore(db.pool), caFactory: noEnvironmentCreation }) });
    const roundsWithOtherThanOneWinner: number[] = [];
    const loserKinds = new Map<string, number>();
    const loserLatencies: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const deviceId = uniqueDeviceId('race');
      const [created] = await tokens.create({ deviceId }, 'test');
      const outcomes = await Promise.all(
        csrs.map(async (csr, i) => {
          const started = performance.now();
          try {
            await replicas[i % replicas.length]!.enroll({ token: created!.token, csr });
            return 'won';
          } catch (error) {
            loserLatencies.push(performance.now() - started);
            if (!(error instanceof EnrollError)) throw error;
            loserKinds.set(error.kind, (loserKinds.get(error.kind) ?? 0) + 1);
            return error.kind;
          }
        }),
      );
      if (outcomes.filter((o) => o === 'won').length !== 1) roundsWithOtherThanOneWinner.push(round);
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1', [deviceId]);
      expect(rows[0].n).toBe(1);
    }
    loserLatencies.sort((a, b) => a - b);
    const p99 = loserLatencies[Math.floor(loserLatencies.length * 0.99)] ?? 0;
    process.stdout.write(
      JSON.stringify({ id: 'TOK-02', pass: roundsWithOtherThanOneWinner.length === 0, figures: { rounds: ROUNDS, concurrent: CONCURRENT, roundsWithMoreOrFewerThanOneWinner: roundsWithOtherThanOneWinner.length, loserKinds: Object.fromEntries(loserKinds), loserP99Ms: Number(p99.toFixed(1)) } }) + '\n',
    );
    expect(roundsWithOtherThanOneWinner).toEqual([]);
    // Losers are told the token is spent (409: another CSR) — never a 5xx kind.
    expect([...loserKinds.keys()].every((k) => k === 'conflict' || k === 'unauthorized')).toBe(true);
  }, 240_000); // 100 rounds of 100 concurrent enrollments on two pools: a hang guard, not a speed target
});
