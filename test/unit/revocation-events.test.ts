// The in-process revocation feed, the feed merge, the outbound relay, and the revocation sync hearing one revocation
// from two feeds (the in-process push and the Postgres NOTIFY) without cutting twice or skipping a seq.
import { describe, expect, it } from '@jest/globals';
import { createLocalRevocationFeed } from '@enrolld/core/events/local-revocation-feed.js';
import { mergeRevocationFeeds } from '@enrolld/core/events/merge-feeds.js';
import { createOutboundRelay, type OutboundMessage } from '@enrolld/core/events/outbound-relay.js';
import type { RevocationEvent, RevocationFeed, RevocationFeedHandlers, RevokedCertificate, StoredCrl } from '@enrolld/core/revocation/ports.js';
import { createRevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { createRevocationSync, type RevokedNotice } from '@enrolld/core/revocation/revocation-sync.js';

const revokedAt = new Date('2030-01-02T03:04:05.678Z');
const cert = (serial: string, seq: number): RevokedCertificate => ({ serial, deviceId: `dev-${seq}`, environment: 'default', seq, reasonCode: 1, revokedAt });
const crl = (crlNumber: bigint): StoredCrl => ({ crlNumber, der: Buffer.alloc(0), thisUpdate: revokedAt, nextUpdate: revokedAt, coversSeq: 0 });

function recorder() {
  const events: RevocationEvent[] = [];
  const crls: bigint[] = [];
  const connections: boolean[] = [];
  const handlers: RevocationFeedHandlers = {
    onRevocation: (event) => events.push(event),
    onCrl: (n) => crls.push(n),
    onConnection: (connected) => connections.push(connected),
  };
  return { events, crls, connections, handlers };
}

/** A feed the test drives by hand, as the Postgres listener would. */
function manualFeed() {
  let handlers: RevocationFeedHandlers | undefined;
  const feed: RevocationFeed & { handlers(): RevocationFeedHandlers | undefined; stops: number } = {
    stops: 0,
    async start(next) {
      handlers = next;
    },
    async stop() {
      feed.stops++;
      handlers = undefined;
    },
    handlers: () => handlers,
  };
  return feed;
}

describe('local revocation feed', () => {
  it('delivers each revoked certificate, then the CRL number, synchronously to the started handlers', async () => {
    const feed = createLocalRevocationFeed();
    const seen = recorder();
    await feed.start(seen.handlers);
    feed.revoked([cert('0a', 7), cert('0b', 8)], crl(3n));
    expect(seen.events).toEqual([
      { serial: '0a', deviceId: 'dev-7', seq: 7, reasonCode: 1, atMs: revokedAt.getTime() },
      { serial: '0b', deviceId: 'dev-8', seq: 8, reasonCode: 1, atMs: revokedAt.getTime() },
    ]);
    expect(seen.crls).toEqual([3n]);
    feed.revoked([cert('0c', 9)], undefined);
    expect(seen.crls).toEqual([3n]);
    expect(seen.events).toHaveLength(3);
  });

  it('drops events before start and after stop', async () => {
    const feed = createLocalRevocationFeed();
    const seen = recorder();
    feed.revoked([cert('0a', 1)], crl(1n));
    await feed.start(seen.handlers);
    await feed.stop();
    feed.revoked([cert('0b', 2)], crl(2n));
    expect(seen.events).toEqual([]);
    expect(seen.crls).toEqual([]);
  });
});

describe('mergeRevocationFeeds', () => {
  it('starts every feed with the same event handlers; connection state comes from the primary only; stops all', async () => {
    const primary = manualFeed();
    const other = manualFeed();
    const seen = recorder();
    const merged = mergeRevocationFeeds(primary, other);
    await merged.start(seen.handlers);
    primary.handlers()!.onRevocation({ serial: '01', deviceId: 'a', seq: 1, reasonCode: 1, atMs: 1 });
    other.handlers()!.onRevocation({ serial: '02', deviceId: 'b', seq: 2, reasonCode: 1, atMs: 2 });
    other.handlers()!.onCrl(5n);
    other.handlers()!.onConnection(false);
    primary.handlers()!.onConnection(true);
    expect(seen.events.map((e) => e.serial)).toEqual(['01', '02']);
    expect(seen.crls).toEqual([5n]);
    expect(seen.connections).toEqual([true]);
    await merged.stop();
    expect([primary.stops, other.stops]).toEqual([1, 1]);
  });

  it('stops the other feeds when the primary fails to start', async () => {
    const other = manualFeed();
    const failing: RevocationFeed = { start: () => Promise.reject(new Error('no listener')), stop: async () => undefined };
    await expect(mergeRevocationFeeds(failing, other).start(recorder().handlers)).rejects.toThrow('no listener');
    expect(other.stops).toBe(1);
    expect(other.handlers()).toBeUndefined();
  });
});

describe('outbound relay', () => {
  const message: OutboundMessage = { topic: 'devices/a/cert/rotate', payload: Buffer.from('{}'), qos: 1 };

  it('rejects a publish while no broker consumes', async () => {
    await expect(createOutboundRelay().publish(message)).rejects.toThrow('no broker is consuming server-originated messages');
  });

  it('hands publishes to the sink until it unsubscribes', async () => {
    const relay = createOutboundRelay();
    const got: OutboundMessage[] = [];
    const unsubscribe = relay.consume(async (m) => {
      got.push(m);
    });
    await relay.publish(message);
    expect(got).toEqual([message]);
    unsubscribe();
    await expect(relay.publish(message)).rejects.toThrow('no broker is consuming');
    expect(got).toHaveLength(1);
  });

  it('passes on the sink\'s failure', async () => {
    const relay = createOutboundRelay();
    relay.consume(() => Promise.reject(new Error('broker not running')));
    await expect(relay.publish(message)).rejects.toThrow('broker not running');
  });
});

describe('revocation sync with the local feed and NOTIFY merged', () => {
  async function startSync() {
    const clock = { now: () => new Date(1_000) };
    const stored: RevokedCertificate[] = [];
    const storedCrls: StoredCrl[] = [];
    const store = {
      snapshot: async () => ({ revoked: [], lastSeq: 0 }),
      revokedSince: async (seq: number) => stored.filter((r) => r.seq > seq),
      latestCrl: async () => storedCrls.at(-1),
    };
    const state = createRevocationState({ maxStalenessMs: 60_000 });
    const local = createLocalRevocationFeed();
    const notify = manualFeed();
    const cuts: RevokedNotice[][] = [];
    const appliedCrls: bigint[] = [];
    const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
    const sync = createRevocationSync({
      store,
      feed: mergeRevocationFeeds(notify, local),
      state,
      clock,
      logger: silent,
      resyncIntervalMs: 60_000,
      onRevoked: (notices) => cuts.push(notices),
      onCrl: (applied) => appliedCrls.push(applied.crlNumber),
    });
    await sync.start();
    return { sync, state, local, notify, cuts, stored, storedCrls, appliedCrls };
  }

  it('cuts once when the in-process push and the NOTIFY both deliver a revocation, and advances the seq once', async () => {
    const { sync, state, local, notify, cuts, stored } = await startSync();
    const revoked = cert('1a2b', 1);
    stored.push(revoked);
    local.revoked([revoked], undefined);
    expect(cuts).toEqual([[{ serial: '1a2b', deviceId: 'dev-1', reasonCode: 1, atMs: revokedAt.getTime() }]]);
    expect(state.lastSeq()).toBe(1);
    notify.handlers()!.onRevocation({ serial: '1a2b', deviceId: 'dev-1', seq: 1, reasonCode: 1, atMs: revokedAt.getTime() + 3 });
    await sync.syncNow();
    expect(cuts).toHaveLength(1);
    expect(state.lastSeq()).toBe(1);
    await sync.stop();
  });

  it('the NOTIFY first, the in-process push second: still one cut', async () => {
    const { sync, local, notify, cuts } = await startSync();
    const revoked = cert('3c4d', 1);
    notify.handlers()!.onRevocation({ serial: '3c4d', deviceId: 'dev-1', seq: 1, reasonCode: 1, atMs: revokedAt.getTime() });
    local.revoked([revoked], undefined);
    expect(cuts).toHaveLength(1);
    await sync.stop();
  });

  it('applies a CRL handed over in-process at once, and not again when NOTIFY and the store report the same number', async () => {
    const { sync, local, notify, storedCrls, appliedCrls } = await startSync();
    const newer = crl(4n);
    storedCrls.push(newer);
    local.revoked([cert('5e6f', 1)], newer);
    expect(appliedCrls).toEqual([4n]);
    notify.handlers()!.onCrl(4n);
    await sync.syncNow();
    expect(appliedCrls).toEqual([4n]);
    await sync.stop();
  });

  it('a CRL announced by number only is fetched from the store', async () => {
    const { sync, notify, storedCrls, appliedCrls } = await startSync();
    storedCrls.push(crl(7n));
    notify.handlers()!.onCrl(7n);
    await sync.syncNow();
    expect(appliedCrls).toEqual([7n]);
    await sync.stop();
  });
});
