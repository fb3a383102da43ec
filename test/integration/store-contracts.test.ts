// The store port contracts (test/contract/*.contract.ts) against the in-memory fakes the unit tests use and against
// the Postgres stores of db/, each on a fresh database.
import { afterAll, beforeAll } from '@jest/globals';
import { systemClock } from '@enrolld/core/clock.js';
import { createPgEnrollmentStore, createPgRenewalStore, createPgRevocationStore, createPgTokenStore } from '@enrolld/db';
import { describeEnrollmentStoreContract } from '../contract/enrollment.contract.js';
import { describeRevocationStoreContract } from '../contract/revocation.contract.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryTables } from '../support/fakes/memory-tables.js';
import { createMemoryRevocationStore } from '../support/fakes/revocation.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function memoryStores() {
  const tables = createMemoryTables(systemClock);
  const tokens = createMemoryTokenStore(tables);
  return { tokens, lookup: tokens, enrollment: createMemoryEnrollmentStore(tables), revocation: createMemoryRevocationStore(tables) };
}

function postgresStores() {
  return {
    tokens: createPgTokenStore(db.pool),
    lookup: createPgRenewalStore(db.pool),
    enrollment: createPgEnrollmentStore(db.pool),
    revocation: createPgRevocationStore(db.pool),
  };
}

describeEnrollmentStoreContract('in-memory fake', memoryStores);
describeEnrollmentStoreContract('Postgres', postgresStores);
describeRevocationStoreContract('in-memory fake', memoryStores);
describeRevocationStoreContract('Postgres', postgresStores);
