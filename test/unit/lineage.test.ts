// Lineage (core/src/renewal/lineage.ts) on the in-memory stores, the real revoke use case, a manual clock and a manual
// scheduler for the batch window: a successor's first connect supersedes its predecessor once, however many connects
// race; successors connecting in one window share one revocation statement, and one statement runs at a time; a failed
// statement leaves its predecessors pending; the grace job supersedes the rest in one statement; revokeLineage takes
// a certificate and its descendants, never its ancestors; load() restores what is pending.
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

/** The batch window's timers, fired when the test says the window has passed. */
function createManualScheduler() {
  const due: Array<() => void> = [];
  return {
    schedule: (fn: () => void) => void due.push(fn),
    windowPassed: () => {
      for (const fn of due.splice(0)) fn();
    },
  };
}

/** Lets every settled promise run its continuations (no timers involved). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

function setup() {
  const clock = createManualClock();
  const tables = createMemoryTables(clock);
  const renewalStore = createMemoryRenewalStore(tables);
  const stores = { tokens: createMemoryTokenStore(tables), enrollment: createMemoryEnrollmentStore(tables) };
  const service = createRevocationService({ store: createMemoryRevocationStore(tables), signer: ca, clock, crlValidityMs: 3600_000, crlMinIntervalMs: 0 });
  /** Every serial the lineage asked to revoke, and each revokeCertificates call (one statement each). */
  const revocationCalls: string[] = [];
  const batches: string[][] = [];
  /** While set, revokeCertificates waits for it (a statement still running) or fails with it. */
  const control: { hold?: Promise<void>; failNext?: Error } = {};
  const revoker: typeof service = {
    ...service,
    revokeCertificate: (serial, input) => {
      revocationCalls.push(serial);
      return service.revokeCertificate(serial, input);
    },
    revokeCertificates: async (serials, input) => {
      revocationCalls.push(...serials);
      batches.push([...serials]);
      await control.hold;
      const failure = control.failNext;
      control.failNext = undefined;
      if (failure) throw failure;
      return service.revokeCertificates(serials, input);
    },
  };
  const scheduler = createManualScheduler();
  const superseded: Array<[SupersedeTrigger, string]> = [];
  const delays: Array<number | undefined> = [];
  const newLineage = () =>
    createLineage({
      store: renewalStore,
      revoker,
      clock,
      logger: silent,
      graceSeconds: GRACE_SECONDS,
      schedule: scheduler.schedule,
      onSuperseded: (trigger, serial, sinceFirstConnectMs) => {
        superseded.push([trigger, serial]);
        delays.push(sinceFirstConnectMs);
      },
    });

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
  /** `count` devices, each renewed once: the supersessions left pending. */
  async function rotated(count: number): Promise<PendingSupersession[]> {
    const renewals: PendingSupersession[] = [];
    for (let i = 0; i < count; i++) renewals.push(await renew(await issued()));
    return renewals;
  }
  return { clock, tables, newLineage, renew, issued, rotated, reasonOf, superseded, delays, revocationCalls, batches, control, windowPassed: scheduler.windowPassed };
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
    const connects = Promise.all([1, 2, 3, 4].map(() => lineage.successorConnected(renewal.successorSerial)));
    t.windowPassed();
    expect(await connects).toEqual([true, true, true, true]);
    expect(t.revocationCalls).toEqual([predecessor]);
    expect(t.reasonOf(predecessor)).toBe(SUPERSEDED);
    expect(t.reasonOf(renewal.successorSerial)).toBeNull();
    expect(t.superseded).toEqual([['first-connect', predecessor]]);
    expect(await lineage.successorConnected(renewal.successorSerial)).toBe(false);
    expect(lineage.pendingCount()).toBe(0);
  });

  it('reports the time from each successor\'s first connect to the committed supersede, and none for the grace job', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const [first, second] = await t.rotated(2);
    lineage.noteRenewal(first!);
    lineage.noteRenewal(second!);
    const connects = [lineage.successorConnected(first!.successorSerial)];
    t.clock.advance(15);
    connects.push(lineage.successorConnected(second!.successorSerial));
    t.clock.advance(10);
    t.windowPassed();
    await Promise.all(connects);
    expect(t.delays).toEqual([25, 10]);
    const graceOnly = await t.renew(await t.issued());
    t.clock.advance(GRACE_SECONDS * 1000);
    expect(await lineage.supersedeDue()).toBe(1);
    expect(t.superseded.at(-1)).toEqual(['grace', graceOnly.predecessorSerial]);
    expect(t.delays.at(-1)).toBeUndefined();
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

  it('successors that first connect in one window are superseded by one statement', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const renewals = await t.rotated(100);
    for (const r of renewals) lineage.noteRenewal(r);
    const connects = Promise.all(renewals.map((r) => lineage.successorConnected(r.successorSerial)));
    await settle();
    expect(t.batches).toEqual([]); // nothing is sent before the window ends
    t.windowPassed();
    expect(await connects).toEqual(renewals.map(() => true));
    expect(t.batches).toEqual([renewals.map((r) => r.predecessorSerial)]);
    expect(renewals.map((r) => t.reasonOf(r.predecessorSerial))).toEqual(renewals.map(() => SUPERSEDED));
    expect(t.superseded).toEqual(renewals.map((r) => ['first-connect', r.predecessorSerial]));
    expect(lineage.pendingCount()).toBe(0);
  });

  it('racing connects revoke each predecessor once, and the next window waits for the statement in flight', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const renewals = await t.rotated(20);
    for (const r of renewals) lineage.noteRenewal(r);
    const [early, late] = [renewals.slice(0, 10), renewals.slice(10)];
    let release!: () => void;
    t.control.hold = new Promise<void>((resolve) => (release = resolve));
    const firstWave = Promise.all([...early, ...early, ...early].map((r) => lineage.successorConnected(r.successorSerial)));
    t.windowPassed();
    await settle();
    expect(t.batches).toHaveLength(1); // the first statement is running (held)
    // While it runs: the same successors connect again (they join it), and new ones open the next window.
    const rejoin = Promise.all(early.map((r) => lineage.successorConnected(r.successorSerial)));
    const secondWave = Promise.all([...late, ...late].map((r) => lineage.successorConnected(r.successorSerial)));
    t.windowPassed();
    await settle();
    expect(t.batches).toHaveLength(1); // one statement at a time
    t.control.hold = undefined;
    release();
    expect(await firstWave).toEqual([...early, ...early, ...early].map(() => true));
    expect(await rejoin).toEqual(early.map(() => true));
    expect(await secondWave).toEqual([...late, ...late].map(() => true));
    expect(t.batches).toEqual([early.map((r) => r.predecessorSerial), late.map((r) => r.predecessorSerial)]);
    expect([...t.revocationCalls].sort()).toEqual(renewals.map((r) => r.predecessorSerial).sort());
    expect(t.superseded).toHaveLength(20);
    expect(await lineage.successorConnected(renewals[0]!.successorSerial)).toBe(false);
  });

  it('a failed statement leaves its predecessors pending for the next connect', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const renewals = await t.rotated(3);
    for (const r of renewals) lineage.noteRenewal(r);
    t.control.failNext = new Error('timeout exceeded when trying to connect');
    const failed = Promise.all(renewals.map((r) => lineage.successorConnected(r.successorSerial)));
    t.windowPassed();
    expect(await failed).toEqual([false, false, false]);
    expect(lineage.pendingCount()).toBe(3);
    expect(renewals.map((r) => t.reasonOf(r.predecessorSerial))).toEqual([null, null, null]);
    const retried = Promise.all(renewals.map((r) => lineage.successorConnected(r.successorSerial)));
    t.windowPassed();
    expect(await retried).toEqual([true, true, true]);
    expect(t.batches).toHaveLength(2);
    expect(t.superseded).toHaveLength(3);
    expect(lineage.pendingCount()).toBe(0);
  });

  it('the grace job supersedes every due predecessor in one statement, joining a first-connect batch in flight', async () => {
    const t = setup();
    const lineage = t.newLineage();
    const renewals = await t.rotated(5);
    lineage.noteRenewal(renewals[0]!);
    t.clock.advance(GRACE_SECONDS * 1000);
    const connected = lineage.successorConnected(renewals[0]!.successorSerial);
    const due = lineage.supersedeDue();
    t.windowPassed();
    expect(await connected).toBe(true);
    expect(await due).toBe(5);
    expect(t.batches).toHaveLength(2);
    expect(t.batches).toContainEqual([renewals[0]!.predecessorSerial]);
    expect(t.batches).toContainEqual(renewals.slice(1).map((r) => r.predecessorSerial));
    expect(t.superseded.map(([trigger]) => trigger).sort()).toEqual(['first-connect', 'grace', 'grace', 'grace', 'grace']);
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
    const connected = restarted.successorConnected(renewal.successorSerial);
    t.windowPassed();
    expect(await connected).toBe(true);
    expect(t.reasonOf(predecessor)).toBe(SUPERSEDED);
    expect(await t.newLineage().load()).toBe(0);
  });
});
