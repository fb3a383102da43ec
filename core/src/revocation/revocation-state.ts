// What a broker process knows about revocation (docs/architecture.md, revocation). It is "unknown" until the first
// full load from the store succeeds and again when the last successful sync is older than `maxStalenessMs`: while
// unknown, the broker refuses device CONNECTs (fail closed; Mosquitto CVE-2017-7652 fell back to allow-all instead).
// That age is time elapsed, read on a clock that never steps: a wall-clock step (NTP at boot, a VM restored from a
// snapshot) must not make the whole fleet's CONNECTs fail, nor hide a sync that really is overdue.
import { REVOCATION_REASONS } from '@enrolld/protocol';
import { monotonicMs } from '../clock.js';
import type { RevocationSnapshot, RevokedCertificate } from './ports.js';

export type RevocationStatus = { known: true } | { known: false; reason: string };

export interface RevocationStateOptions {
  /** After this long without a successful load or resync the state is unknown again. */
  maxStalenessMs: number;
  /** Milliseconds on a monotonic clock, for the age of the last sync (default `monotonicMs`). */
  elapsedMs?: () => number;
}

export interface RevocationState {
  status(): RevocationStatus;
  isRevoked(serial: string): boolean;
  /** The RFC 5280 §5.3.1 reason code of a revoked serial (0, unspecified, when the event did not carry one). */
  revocationOf(serial: string): number | undefined;
  lastSeq(): number;
  /** Replaces everything with a full snapshot; returns the serials not known before. */
  load(snapshot: RevocationSnapshot): string[];
  /**
   * Forgets what a newer snapshot no longer holds: a serial it covers (seq up to its lastSeq) that it does not list
   * belongs to a certificate expired for more than a day (RevocationStore.snapshot), which admission refuses as expired
   * anyway. Later serials stay. So memory follows the live certificates, not the revocation history (every renewal
   * revokes its predecessor). Returns the serials new to this state, and how many were dropped.
   */
  compact(snapshot: RevocationSnapshot): { fresh: string[]; dropped: number };
  /** Adds revocations (from NOTIFY or a resync); returns the serials that are new. */
  apply(revoked: Array<Pick<RevokedCertificate, 'serial' | 'seq'> & Partial<Pick<RevokedCertificate, 'reasonCode'>>>, options?: { advanceSeq?: boolean }): string[];
  /** Records a successful resync that found nothing new. */
  markSynced(lastSeq?: number): void;
  /** Forgets that we were in sync (e.g. "initial load failed: …"). */
  markUnknown(reason: string): void;
  size(): number;
}

export function createRevocationState(options: RevocationStateOptions): RevocationState {
  /** serial → RFC 5280 §5.3.1 reason code, and the revocation's seq (0 when the event did not carry one) */
  const revoked = new Map<string, { reasonCode: number; seq: number }>();
  let seq = 0;
  let loaded = false;
  let lastSyncAt = -Infinity;
  let unknownReason = 'revocation state not loaded yet';
  const elapsedMs = options.elapsedMs ?? monotonicMs;

  function add(serial: string, reasonCode: number | undefined, revocationSeq: number | undefined, fresh: string[]): void {
    if (!revoked.has(serial)) {
      revoked.set(serial, { reasonCode: reasonCode ?? REVOCATION_REASONS.unspecified, seq: revocationSeq ?? 0 });
      fresh.push(serial);
    }
  }

  return {
    status(): RevocationStatus {
      if (!loaded) return { known: false, reason: unknownReason };
      const age = elapsedMs() - lastSyncAt;
      if (age > options.maxStalenessMs) {
        return { known: false, reason: `revocation state is ${Math.round(age / 1000)} s old (limit ${Math.round(options.maxStalenessMs / 1000)} s): ${unknownReason}` };
      }
      return { known: true };
    },
    isRevoked(serial) {
      return revoked.has(serial);
    },
    revocationOf(serial) {
      return revoked.get(serial)?.reasonCode;
    },
    lastSeq() {
      return seq;
    },
    load(snapshot) {
      const fresh: string[] = [];
      // A full load never forgets a serial we already saw revoked: revocation is permanent (RFC 5280 §3.3 certificateHold
      // is not offered), and dropping one would re-admit a cert until the next load.
      for (const r of snapshot.revoked) add(r.serial, r.reasonCode, r.seq, fresh);
      seq = Math.max(seq, snapshot.lastSeq);
      loaded = true;
      lastSyncAt = elapsedMs();
      return fresh;
    },
    apply(items, applyOptions = {}) {
      const fresh: string[] = [];
      for (const r of items) {
        add(r.serial, r.reasonCode, r.seq, fresh);
        // NOTIFY can arrive out of order with a resync; only a contiguous resync advances the seq (advanceSeq),
        // so an event for seq 9 never makes us skip a lost seq 8.
        if (applyOptions.advanceSeq && r.seq > seq) seq = r.seq;
      }
      return fresh;
    },
    compact(snapshot) {
      const listed = new Set(snapshot.revoked.map((r) => r.serial));
      let dropped = 0;
      // A serial without a seq (0) is covered by every snapshot: the store gives every revocation one.
      for (const [serial, entry] of revoked) {
        if (entry.seq <= snapshot.lastSeq && !listed.has(serial)) {
          revoked.delete(serial);
          dropped++;
        }
      }
      const fresh: string[] = [];
      for (const r of snapshot.revoked) add(r.serial, r.reasonCode, r.seq, fresh);
      seq = Math.max(seq, snapshot.lastSeq);
      lastSyncAt = elapsedMs();
      return { fresh, dropped };
    },
    markSynced(lastSeq) {
      if (lastSeq !== undefined && lastSeq > seq) seq = lastSeq;
      if (loaded) lastSyncAt = elapsedMs();
    },
    markUnknown(reason) {
      unknownReason = reason;
      if (!loaded) return;
      // Keep the serials (they stay revoked) but let staleness decide; the reason is shown when it does.
    },
    size() {
      return revoked.size;
    },
  };
}
