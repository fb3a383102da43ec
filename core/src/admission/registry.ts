// The certificates a broker admits (docs/architecture.md §7): per device its current certificate and, during the
// rotation overlap, that one's predecessor. A CONNECT is admitted only if its serial is one of them, so a valid,
// unrevoked certificate that is no longer current (an older sibling) is refused too. Memory grows with live devices
// (at most two entries each), not with issuance or revocation history; every operation is O(1) per event.
//
// Events arrive from several paths (in-process, NOTIFY, resync, a lookup) in any order and any number of times. The
// current entry is the newest one that no other held entry renews: lineage first, then the highest issue seq, where an
// in-process event (no seq yet) is newer than any numbered one, because it was heard the moment it committed. Applying an
// event twice changes nothing.
import { REVOCATION_REASONS } from '@enrolld/protocol';
import type { IssuedCertificateEvent, RegistrySnapshot } from './ports.js';

export type RegistryRefusal = 'revoked' | 'superseded' | 'expired' | 'not-current' | 'unknown';
export type RegistryDecision = { ok: true } | { ok: false; reason: RegistryRefusal };

export interface AdmissionRegistryDeps {
  /** The RFC 5280 §5.3.1 reason code when the serial is revoked (the revocation state), else undefined. */
  revocationOf(serial: string): number | undefined;
}

interface Entry {
  serial: string;
  seq: number | undefined;
  /** Order among events heard in-process before their seq is known (a device that renews twice in a row). */
  heard: number;
  notAfterMs: number;
  predecessorSerial: string | undefined;
  /**
   * Admitted on this broker as its device's current certificate: the overlap is over, and the predecessor is refused as
   * superseded while its revocation commits. Kept on the current entry, not on the predecessor's, because the predecessor
   * may be dropped and heard again (a lookup, a resync page) before its revocation arrives, and must stay refused.
   */
  admitted?: true;
}

export interface AdmissionRegistry {
  admit(serial: string, deviceId: string, nowMs: number): RegistryDecision;
  /** A stored certificate; `advanceSeq` only for contiguous events (a resync page, or seq = lastSeq + 1). */
  issued(event: IssuedCertificateEvent, options?: { advanceSeq?: boolean }): void;
  /**
   * A device's current certificate was admitted at CONNECT: its predecessor is refused as `superseded` from now on,
   * here, before the supersede that this first connect triggers commits (docs/architecture.md §8).
   */
  successorAdmitted(serial: string, deviceId: string): void;
  /** The device's current certificate, if the registry holds the device. */
  currentOf(deviceId: string): string | undefined;
  /** A revocation: the serial stops being admitted (a predecessor left behind becomes current). */
  revoked(serial: string, deviceId: string): void;
  /** Merges a full snapshot (never forgets a newer event heard meanwhile). */
  load(snapshot: RegistrySnapshot): void;
  /** Forgets devices whose certificates have all expired. O(devices); the sync runs it rarely. */
  prune(nowMs: number): number;
  lastSeq(): number;
  /** Devices held. */
  size(): number;
}

const SUPERSEDED = REVOCATION_REASONS.superseded;

/** Unnumbered (in-process) events rank above every numbered one, and among themselves in the order heard. */
const UNNUMBERED_BASE = 2 ** 52;
const order = (entry: Entry): number => entry.seq ?? UNNUMBERED_BASE + entry.heard;

export function createAdmissionRegistry(deps: AdmissionRegistryDeps): AdmissionRegistry {
  /** deviceId → [current, predecessor?] */
  const devices = new Map<string, Entry[]>();
  let seq = 0;
  let heard = 0;

  /**
   * Keeps the current entry and, if held, the one it renews. The current one is the newest that no other held entry
   * renews: the lineage decides before the order, because the order can be wrong for a while. A successor may get its seq
   * (from a lookup or a resync page) before its predecessor, heard in-process, gets its own; the unnumbered predecessor
   * would then outrank it, and the successor, already admitted, would be dropped.
   */
  function settle(deviceId: string, entries: Entry[]): void {
    const renewed = new Set(entries.map((e) => e.predecessorSerial));
    let current: Entry | undefined;
    for (const e of entries) if (!renewed.has(e.serial) && (current === undefined || order(e) > order(current))) current = e;
    if (current === undefined) {
      devices.delete(deviceId);
      return;
    }
    const predecessorSerial = current.predecessorSerial;
    const predecessor = predecessorSerial === undefined ? undefined : entries.find((e) => e.serial === predecessorSerial);
    devices.set(deviceId, predecessor ? [current, predecessor] : [current]);
  }

  function add(event: IssuedCertificateEvent): void {
    if (deps.revocationOf(event.serial) !== undefined) return;
    const entries = devices.get(event.deviceId) ?? [];
    const known = entries.find((e) => e.serial === event.serial);
    if (known) {
      if (known.seq === undefined && event.seq !== undefined) known.seq = event.seq;
      known.predecessorSerial ??= event.predecessorSerial;
    } else {
      entries.push({ serial: event.serial, seq: event.seq, heard: heard++, notAfterMs: event.notAfterMs, predecessorSerial: event.predecessorSerial });
    }
    settle(event.deviceId, entries);
  }

  return {
    admit(serial, deviceId, nowMs) {
      const reasonCode = deps.revocationOf(serial);
      if (reasonCode !== undefined) return { ok: false, reason: reasonCode === SUPERSEDED ? 'superseded' : 'revoked' };
      const entries = devices.get(deviceId);
      const entry = entries?.find((e) => e.serial === serial);
      if (!entries || !entry) return { ok: false, reason: entries ? 'not-current' : 'unknown' };
      if (entry !== entries[0] && entries[0]!.admitted) return { ok: false, reason: 'superseded' };
      // RFC 5280 §4.1.2.5: notAfter is inclusive.
      if (nowMs > entry.notAfterMs) return { ok: false, reason: 'expired' };
      return { ok: true };
    },
    issued(event, options = {}) {
      add(event);
      if (options.advanceSeq && event.seq !== undefined && event.seq > seq) seq = event.seq;
    },
    successorAdmitted(serial, deviceId) {
      const current = devices.get(deviceId)?.[0];
      if (current?.serial === serial) current.admitted = true;
    },
    currentOf: (deviceId) => devices.get(deviceId)?.[0]?.serial,
    revoked(serial, deviceId) {
      const entries = devices.get(deviceId);
      if (!entries?.some((e) => e.serial === serial)) return;
      settle(deviceId, entries.filter((e) => e.serial !== serial));
    },
    load(snapshot) {
      for (const certificate of snapshot.certificates) if (!certificate.revoked) add(certificate);
      seq = Math.max(seq, snapshot.lastSeq);
    },
    prune(nowMs) {
      let dropped = 0;
      for (const [deviceId, entries] of devices) {
        const live = entries.filter((e) => e.notAfterMs >= nowMs);
        if (live.length === entries.length) continue;
        dropped++;
        if (live.length === 0) devices.delete(deviceId);
        else devices.set(deviceId, live);
      }
      return dropped;
    },
    lastSeq: () => seq,
    size: () => devices.size,
  };
}
