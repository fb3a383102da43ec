// Lineage (core/src/renewal/lineage.ts) on the in-memory stores, the real revoke use case and a manual clock: a
// successor's first connect supersedes its predecessor once, however many connects race; the grace job supersedes
// the rest; revokeLineage takes a certificate and its descendants, never its ancestors; load() restores what is pending.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { createLineage, type SupersedeTrigger } from '@enrolld/core/renewal/lineage.js';
import type { PendingSupersession } from '@enrolld/core/renewal/ports.js';
import { createRevocationService } from '@enrolld/core/revocation/revocation-service.js';
import { enrollCertificate, intentFor } from '../contract/store-fixtures.js';
import { createTestIssuingCa, randomDeviceId } from '../support/csr-factory.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryTables } from '../support/fakes/memory-tables.js';
import { createMemoryRenewalStore } from '../support/fakes/renewal.js';
import { createMemoryRevocationStore } from '../support/fakes/revocation.js';

let ca: DeviceIssuingCa;
beforeAll(async () => {
  ca = (await createTestIssuingCa()).ca;
});

const GRACE_SECONDS = 60;
const SUPERSEDED = 4; // RFC 5280 §5.3.1
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

function setup() {
  const clock = createManualClock();
  const tables = createMemoryTables(clock);
  const renewalStore = createMemoryRenewalStore(tables);
  const stores = { tokens: createMemoryTokenStore(tables), enrollment: createMemoryEnrollmentStore(tables) };
  const service = createRevocationService({ store: createMemoryRevocationStore(tables), signer: ca, clock, crlValidityMs: 3600_000 });
  const revocationCalls: string[] = [];
  const revoker: typeof service = {
    ...service,
    revokeCertificate: (serial, input) => {
      revocationCalls.push(serial);
      return service.revokeCertificate(serial, input);
    },
  };
  const superseded: Array<[SupersedeTrigger, string]> = [];
  const newLineage = () =>
    createLineage({ store: renewalStore, revoker, clock, logger: silent, graceSeconds: GRACE_SECONDS, onSuperseded: (trigger, serial) => superseded.push([trigger, serial]) });

  /** Renews `serial` in the store and returns the supersession it leaves pending. */
  async function renew(serial: string): Promise<PendingSupersession> {
    const key = randomBytes(32);
    const begun = await renewalStore.beginRenewal({
      predecessorSerial: serial,
      csrSha256: key,
      publicKeySha256: key,
      inFlightSeconds: 0,
      authorize: () => undefined,
      buildIntent: (p) => intentFor(p, key, { publicKeySha256: key }),
    });
    if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
    const successor = await renewalStore.complete(begun.intent.serial, Buffer.from('signed'));
    return { successorSerial: successor.serial, predecessorSerial: serial, deviceId: successor.deviceId, issuedAt: clock.now() };
  }
  const issued = async () => (await enrollCertificate(stores, randomDeviceId('lineage'))).serial;
  const reasonOf = (serial: string) => tables.certificates.get(serial)?.revocationReason ?? null;
  return { clock, tables, newLineage, renew, issued, reasonOf, superseded, revocationCalls };
}

describe('lineage', () => {
  it('the successor\'s first connect supersedes the predecessor once, even when connects race', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const predecessor = await t.issued();
    const renewal = await t.renew(predecessor);
    lineage.noteRenewal(renewal);
    expect(await lineage.successorConnected(predecessor)).toBe(false); // the old certificate connecting is no trigger
    // Connects that arrive while the supersession runs join it: one revocation, and each hears that it happened.
    const connects = await Promise.all([1, 2, 3, 4].map(() => lineage.successorConnected(renewal.successorSerial)));
    expect(connects).toEqual([true, true, true, true]);
    expect(t.revocationCalls).toEqual([predecessor]);
    expect(t.reasonOf(predecessor)).toBe(SUPERSEDED);
    expect(t.reasonOf(renewal.successorSerial)).toBeNull();
    expect(t.superseded).toEqual([['first-connect', predecessor]]);
    expect(await lineage.successorConnected(renewal.successorSerial)).toBe(false);
    expect(lineage.pendingCount()).toBe(0);
  });

  it('the grace job supersedes a predecessor whose successor never connected, once the grace has passed', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const predecessor = await t.issued();
    await t.renew(predecessor);
    expect(await lineage.supersedeDue()).toBe(0);
    expect(t.reasonOf(predecessor)).toBeNull();
    t.clock.advance(GRACE_SECONDS * 1000);
    expect(await lineage.supersedeDue()).toBe(1);
    expect(t.reasonOf(predecessor)).toBe(SUPERSEDED);
    expect(t.superseded).toEqual([['grace', predecessor]]);
    expect(await lineage.supersedeDue()).toBe(0);
  });

  it('revokeLineage takes the certificate and its descendants, oldest first, but not its ancestors', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const first = await t.issued();
    const second = (await t.renew(first)).successorSerial;
    const third = (await t.renew(second)).successorSerial;
    expect(await lineage.revokeLineage(second, { reason: 'keyCompromise', actor: 'unit' })).toEqual([second, third]);
    expect([t.reasonOf(first), t.reasonOf(second), t.reasonOf(third)]).toEqual([null, 1, 1]);
  });

  it('load() restores the pending successors, so a new process supersedes on first connect', async () => {
    const t = setup();
    const predecessor = await t.issued();
    const renewal = await t.renew(predecessor);
    const restarted = t.newLineage();
    expect(restarted.pendingCount()).toBe(0);
    expect(await restarted.load()).toBe(1);
    expect(restarted.pendingCount()).toBe(1);
    expect(await restarted.successorConnected(renewal.successorSerial)).toBe(true);
    expect(t.reasonOf(predecessor)).toBe(SUPERSEDED);
    expect(await t.newLineage().load()).toBe(0);
  });
});
