// The store port contracts (test/contract/*.contract.ts) against the in-memory fakes the unit tests use and against
// the Postgres stores of db/, each on a fresh database.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { systemClock } from '@enrolld/core/clock.js';
import {
  createPgAdminCredentialStore,
  createPgAdminStore,
  createPgDeviceStore,
  createPgEnrollmentStore,
  createPgEnvironmentStore,
  createPgPresenceStore,
  createPgProfileStore,
  createPgRenewalStore,
  createPgRevocationStore,
  createPgTokenStore,
} from '@enrolld/db';
import { describeAdminCredentialStoreContract } from '../contract/admin-credentials.contract.js';
import { describeAdminStoreContract } from '../contract/admins.contract.js';
import { describeDeviceStoreContract } from '../contract/devices.contract.js';
import { describeEnrollmentStoreContract } from '../contract/enrollment.contract.js';
import { describeEnvironmentStoreContract } from '../contract/environments.contract.js';
import { describePresenceStoreContract } from '../contract/presence.contract.js';
import { describeRenewalStoreContract } from '../contract/renewal.contract.js';
import { describeRevocationStoreContract } from '../contract/revocation.contract.js';
import { enrollCertificate, newDeviceId } from '../contract/store-fixtures.js';
import { createMemoryAdminCredentialStore } from '../support/fakes/admin-credentials.js';
import { createMemoryAdminStore } from '../support/fakes/admins.js';
import { createMemoryDeviceStore } from '../support/fakes/devices.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryEnvironmentStore } from '../support/fakes/environments-store.js';
import { createMemoryTables } from '../support/fakes/memory-tables.js';
import { createMemoryPresenceStore } from '../support/fakes/presence.js';
import { createMemoryProfileWrites } from '../support/fakes/profiles.js';
import { createMemoryRenewalStore } from '../support/fakes/renewal.js';
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
  return {
    tokens,
    lookup: tokens,
    enrollment: createMemoryEnrollmentStore(tables),
    revocation: createMemoryRevocationStore(tables),
    renewal: createMemoryRenewalStore(tables),
    profiles: createMemoryProfileWrites(tables),
    devices: createMemoryDeviceStore(tables),
    admins: createMemoryAdminCredentialStore(tables),
    adminRecords: createMemoryAdminStore(tables),
    environments: createMemoryEnvironmentStore(tables),
    presence: createMemoryPresenceStore(systemClock, (id) => tables.devices.get(id)?.profile),
  };
}

function postgresStores() {
  const renewal = createPgRenewalStore(db.pool);
  return {
    tokens: createPgTokenStore(db.pool),
    lookup: renewal,
    enrollment: createPgEnrollmentStore(db.pool),
    revocation: createPgRevocationStore(db.pool),
    renewal,
    profiles: createPgProfileStore(db.pool),
    devices: createPgDeviceStore(db.pool),
    admins: createPgAdminCredentialStore(db.pool),
    adminRecords: createPgAdminStore(db.pool),
    environments: createPgEnvironmentStore(db.pool),
    presence: createPgPresenceStore(db.pool),
  };
}

for (const [name, stores] of [['in-memory fake', memoryStores], ['Postgres', postgresStores]] as const) {
  describeEnrollmentStoreContract(name, stores);
  describeRevocationStoreContract(name, stores);
  describeRenewalStoreContract(name, stores);
  describeDeviceStoreContract(name, stores);
  describeAdminCredentialStoreContract(name, () => stores().admins);
  describeAdminStoreContract(name, () => {
    const all = stores();
    return { ...all, admins: all.adminRecords };
  });
  describeEnvironmentStoreContract(name, stores);
  describePresenceStoreContract(name, stores);
}

describe('Postgres revocation store: the database clock stepped back', () => {
  it('a newest CRL built "later" than now does not make the next rebuild wait for the interval', async () => {
    const stores = postgresStores();
    const { revocation } = stores;
    const deviceId = newDeviceId('clock-step');
    const serials = [(await enrollCertificate(stores, deviceId)).serial, (await enrollCertificate(stores, deviceId)).serial];
    const command = { reasonCode: 1, actor: 'contract' };
    const validity = { thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3600_000) };
    const build = (input: { crlNumber: bigint }) => Buffer.from(`crl-${input.crlNumber}`);
    const hour = { minIntervalMs: 3600_000, currentForMs: 3600_000 };
    await revocation.revokeCertificate(serials[0]!, command);
    const first = await revocation.regenerateCrl(build, validity, 'default');
    // As if the database's clock had stepped an hour back since that CRL was built.
    await db.pool.query("UPDATE crls SET created_at = created_at + interval '1 hour' WHERE crl_number = $1", [first.crlNumber.toString()]);
    await revocation.revokeCertificate(serials[1]!, command);
    const next = await revocation.rebuildCrlWhenDue(build, validity, 'default', hour);
    expect(next.outcome).toBe('built');
    expect(next.outcome === 'built' && next.crl.coversSeq).toBe(await revocation.lastSeq());
  });
});
