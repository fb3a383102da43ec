// The revocation sync (core/src/revocation/revocation-sync.ts) on the in-memory store, a feed the test drives and a
// manual clock: the state is unknown until loaded, events apply once, a seq gap and a lost feed are repaired by the
// resync, and a store that stays unreachable makes the state unknown again (fail closed, docs/architecture.md).
import { describe, expect, it } from '@jest/globals';
import type { RevocationFeed, RevocationFeedHandlers, RevokedCertificate } from '@enrolld/core/revocation/ports.js';
import { createRevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { createRevocationSync, type RevokedNotice } from '@enrolld/core/revocation/revocation-sync.js';
import { hashSecret } from '@enrolld/core/secrets.js';
import { intentFor, newDeviceId, sha256 } from '../contract/store-fixtures.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryTables } from '../support/fakes/memory-tables.js';
import { createMemoryRevocationStore } from '../support/fakes/revocation.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function setup(options: { compactIntervalMs?: number } = {}) {
  const clock = createManualClock();
  const tables = createMemoryTables(clock);
  const store = createMemoryRevocationStore(tables);
  const tokens = createMemoryTokenStore(tables);
  const enrollment = createMemoryEnrollmentStore(tables);
  let handlers: RevocationFeedHandlers | undefined;
  const feed: RevocationFeed = {
    async start(h) {
      handlers = h;
    },
    async stop() {
      handlers = undefined;
    },
  };
  const state = createRevocationState({ maxStalenessMs: 10_000, elapsedMs: clock.elapsedMs });
  const cut: RevokedNotice[] = [];
  let failing = false;
  const sync = createRevocationSync({
    store: {
      snapshot: () => (failing ? Promise.reject(new Error('down')) : store.snapshot()),
      revokedSince: (seq, limit) => (failing ? Promise.reject(new Error('down')) : store.revokedSince(seq, limit)),
      latestCrl: () => (failing ? Promise.reject(new Error('down')) : store.latestCrl()),
    },
    feed,
    state,
    clock,
    logger: silent,
    resyncIntervalMs: 3600_000, // the test triggers every resync itself
    onRevoked: (notices) => cut.push(...notices),
    onCrl: () => undefined,
    compactIntervalMs: options.compactIntervalMs,
  });

  /** An issued certificate of a new device, revoked in the store; returns the revocation as the feed would carry it. */
  async function revokeNew(lifetimeMs = 3600_000): Promise<RevokedCertificate> {
    const deviceId = newDeviceId('sync');
    const tokenHash = hashSecret(deviceId);
    await tokens.createTokens([{ kind: 'device', deviceId, tokenHash, expiresAt: new Date(clock.now().getTime() + 3600_000), profile: 'device' }], 'unit');
    const csr = sha256(deviceId);
    const begun = await enrollment.begin({ tokenHash, csrSha256: csr, retryWindowSeconds: 60, inFlightSeconds: 0, buildIntent: (g) => intentFor(g, csr, { lifetimeMs }) });
    if (begun.outcome !== 'begun') throw new Error(begun.outcome);
    await enrollment.complete(begun.intent.serial, Buffer.from('signed'));
    const outcome = await store.revokeDevice(deviceId, { reasonCode: 1, actor: 'unit' });
    if (outcome.outcome !== 'revoked') throw new Error(outcome.outcome);
    return outcome.revoked[0]!;
  }
  const notify = (r: RevokedCertificate) => handlers!.onRevocation({ serial: r.serial, deviceId: r.deviceId, seq: r.seq, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() });

  return { clock, state, sync, cut, revokeNew, notify, feed: () => handlers!, setFailing: (f: boolean) => (failing = f) };
}

describe('revocation sync', () => {
  it('is unknown until the first load, which cuts nothing it already knew and knows every revoked serial', async () => {
    const t = await setup();
    const before = await t.revokeNew();
    expect(t.state.status().known).toBe(false);
    await t.sync.start();
    expect(t.state.status()).toEqual({ known: true });
    expect(t.state.isRevoked(before.serial)).toBe(true);
    expect(t.state.lastSeq()).toBe(before.seq);
    await t.sync.stop();
  });

  it('applies a notified revocation once, however often it is heard', async () => {
    const t = await setup();
    await t.sync.start();
    const r = await t.revokeNew();
    t.notify(r);
    t.notify(r);
    await t.sync.syncNow();
    expect(t.cut.map((n) => n.serial)).toEqual([r.serial]);
    expect(t.state.lastSeq()).toBe(r.seq);
    await t.sync.stop();
  });

  it('a seq gap is not skipped: the later event cuts at once, the resync fills the gap', async () => {
    const t = await setup();
    await t.sync.start();
    const lost = await t.revokeNew();
    const heard = await t.revokeNew();
    t.notify(heard);
    expect(t.cut.map((n) => n.serial)).toEqual([heard.serial]);
    expect(t.state.lastSeq()).toBe(lost.seq - 1); // not advanced past the missing seq
    await t.sync.syncNow();
    expect(t.cut.map((n) => n.serial)).toEqual([heard.serial, lost.serial]);
    expect(t.state.lastSeq()).toBe(heard.seq);
    await t.sync.stop();
  });

  it('after the feed was lost, its return triggers a resync that finds what was revoked meanwhile', async () => {
    const t = await setup();
    await t.sync.start();
    t.feed().onConnection(false, new Error('LISTEN connection ended'));
    const missed = await t.revokeNew();
    t.feed().onConnection(true);
    // The in-memory store answers within the same turn of the event loop; no timer can have run the resync.
    await new Promise((resolve) => setImmediate(resolve));
    expect(t.cut.map((n) => n.serial)).toEqual([missed.serial]);
    await t.sync.stop();
  });

  it('an unreachable store makes the state unknown once it is older than maxStalenessMs; a resync restores it', async () => {
    const t = await setup();
    await t.sync.start();
    t.setFailing(true);
    await t.sync.syncNow();
    expect(t.state.status().known).toBe(true); // still fresh
    t.clock.advance(10_001);
    expect(t.state.status().known).toBe(false);
    t.setFailing(false);
    await t.sync.syncNow();
    expect(t.state.status()).toEqual({ known: true });
    await t.sync.stop();
  });

  it('compacts against a snapshot every compactIntervalMs: the serial of a certificate expired for over a day is forgotten, a live one stays', async () => {
    const t = await setup({ compactIntervalMs: 3600_000 });
    const expired = await t.revokeNew(3600_000);
    await t.sync.start();
    expect(t.state.isRevoked(expired.serial)).toBe(true);
    t.clock.advance(26 * 3600_000); // the first certificate (1 h) is now expired for more than a day
    const live = await t.revokeNew(30 * 3600_000);
    await t.notify(live);
    expect(t.state.size()).toBe(2);
    await t.sync.syncNow();
    expect(t.state.isRevoked(expired.serial)).toBe(false);
    expect(t.state.isRevoked(live.serial)).toBe(true);
    expect(t.state.size()).toBe(1);
    expect(t.state.status()).toEqual({ known: true });
    expect(t.cut.filter((n) => n.serial === live.serial)).toHaveLength(1); // cut once, not again by the compaction
    await t.sync.stop();
  });
});
