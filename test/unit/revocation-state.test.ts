// A broker's revocation state (core/src/revocation/revocation-state.ts) on a manual clock: unknown until loaded and
// again once stale (fail closed, docs/architecture.md), revocations apply once, serials compare as stored (the
// canonical form, @enrolld/protocol serial.ts), and a load never forgets a serial (revocation is permanent,
// RFC 5280 §3.3).
import { describe, expect, it } from '@jest/globals';
import { createRevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { createManualClock } from '../support/fakes/clock.js';

const MAX_STALENESS_MS = 10_000;

function setup() {
  const clock = createManualClock();
  return { clock, state: createRevocationState({ maxStalenessMs: MAX_STALENESS_MS, elapsedMs: clock.elapsedMs }) };
}

describe('revocation state', () => {
  it('is unknown until the first load, with the reason given', () => {
    const { state } = setup();
    expect(state.status()).toEqual({ known: false, reason: 'revocation state not loaded yet' });
    state.markUnknown('initial load failed: connection refused');
    expect(state.status()).toEqual({ known: false, reason: 'initial load failed: connection refused' });
    state.markSynced(5); // a sync without a load does not make it known
    expect(state.status().known).toBe(false);
    expect(state.load({ revoked: [], lastSeq: 0 })).toEqual([]);
    expect(state.status()).toEqual({ known: true });
  });

  it('applies a revocation once, however often it is heard', () => {
    const { state } = setup();
    state.load({ revoked: [], lastSeq: 0 });
    expect(state.apply([{ serial: '1abc', seq: 1 }])).toEqual(['1abc']);
    expect(state.apply([{ serial: '1abc', seq: 1 }])).toEqual([]);
    expect(state.apply([{ serial: '1abc', seq: 1 }, { serial: '1abd', seq: 2 }])).toEqual(['1abd']);
    expect(state.isRevoked('1abc')).toBe(true);
    expect(state.isRevoked('1abe')).toBe(false);
    expect(state.size()).toBe(2);
  });

  it('only a contiguous resync advances the seq; a notified event never skips a lost one', () => {
    const { state } = setup();
    state.load({ revoked: [], lastSeq: 7 });
    state.apply([{ serial: '1a09', seq: 9 }]);
    expect(state.lastSeq()).toBe(7);
    state.apply([{ serial: '1a08', seq: 8 }, { serial: '1a09', seq: 9 }], { advanceSeq: true });
    expect(state.lastSeq()).toBe(9);
    state.markSynced(6); // never goes back
    expect(state.lastSeq()).toBe(9);
  });

  it('a load adds what it brings and forgets nothing already known', () => {
    const { state } = setup();
    state.load({ revoked: [{ serial: '1a01', deviceId: 'd1', environment: 'default', seq: 1, reasonCode: 1, revokedAt: new Date() }], lastSeq: 1 });
    state.apply([{ serial: '1a02', seq: 2 }], { advanceSeq: true });
    const fresh = state.load({ revoked: [{ serial: '1a03', deviceId: 'd3', environment: 'default', seq: 3, reasonCode: 1, revokedAt: new Date() }], lastSeq: 3 });
    expect(fresh).toEqual(['1a03']);
    expect(['1a01', '1a02', '1a03'].map((s) => state.isRevoked(s))).toEqual([true, true, true]);
    expect(state.lastSeq()).toBe(3);
  });

  it('becomes unknown when the last sync is older than maxStalenessMs, and known again on the next sync', () => {
    const { state, clock } = setup();
    state.load({ revoked: [], lastSeq: 0 });
    clock.advance(MAX_STALENESS_MS);
    expect(state.status()).toEqual({ known: true });
    state.markUnknown('resync failed: store unreachable');
    clock.advance(1);
    const stale = state.status();
    expect(stale.known).toBe(false);
    expect(stale.known === false && stale.reason).toMatch(/resync failed: store unreachable/);
    state.markSynced();
    expect(state.status()).toEqual({ known: true });
  });

  it('measures staleness as elapsed time: a wall-clock step neither makes it stale nor keeps it fresh', () => {
    const { state, clock } = setup();
    state.load({ revoked: [], lastSeq: 0 });
    clock.step(3600_000); // NTP, or a VM restored from a snapshot, moves the wall clock an hour forward
    expect(state.status()).toEqual({ known: true });
    clock.step(-7200_000); // and two hours back: the sync is still as old as the time that has passed
    clock.advance(MAX_STALENESS_MS + 1);
    expect(state.status().known).toBe(false);
  });

  it('a compaction forgets a covered serial the snapshot no longer lists, keeps later ones, and adds what is new', () => {
    const { state } = setup();
    const row = (serial: string, seq: number) => ({ serial, deviceId: `d${seq}`, environment: 'default', seq, reasonCode: 1, revokedAt: new Date() });
    state.load({ revoked: [row('1a01', 1), row('1a02', 2)], lastSeq: 2 });
    state.apply([{ serial: '1a04', seq: 4 }]); // heard before the snapshot below was read
    // The snapshot covers seqs up to 3: 1a01's certificate expired for over a day, 1a03 is new.
    expect(state.compact({ revoked: [row('1a02', 2), row('1a03', 3)], lastSeq: 3 })).toEqual({ fresh: ['1a03'], dropped: 1 });
    expect(['1a01', '1a02', '1a03', '1a04'].map((s) => state.isRevoked(s))).toEqual([false, true, true, true]);
    expect(state.revocationOf('1a02')).toBe(1);
    expect(state.lastSeq()).toBe(3);
    expect(state.size()).toBe(3);
  });
});
