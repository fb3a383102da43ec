// The certificates a broker admits (docs/architecture.md §7): per device its current certificate and, during the
// rotation overlap, that one's predecessor. A CONNECT is admitted only if its serial is one of them, so a valid,
// unrevoked certificate that is no longer current (an older sibling) is refused too. Memory grows with live devices
// (at most two entries each), not with issuance or revocation history; every operation is O(1) per event.
//
// Events arrive from several paths (in-process, NOTIFY, resync, a lookup) in any order and any number of times; the
// entry with the highest issue seq is current, and an in-process event (no seq yet) is newer than any numbered one,
// because it was heard the moment it committed. Applying an event twice changes nothing.
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
  /** Its successor was admitted on this broker: refused as superseded while the revocation commits. */
  retired?: true;
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

  /** Keeps the newest entry and, if held, the one it renews. */
  function settle(deviceId: string, entries: Entry[]): void {
    if (entries.length === 0) {
      devices.delete(deviceId);
      return;
    }
    entries.sort((a, b) => order(b) - order(a));
    const current = entries[0]!;
    const predecessor = current.predecessorSerial === undefined ? undefined : entries.find((e) => e.serial === current.predecessorSerial);
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
      if (!entry) return { ok: false, reason: entries ? 'not-current' : 'unknown' };
      if (entry.retired) return { ok: false, reason: 'superseded' };
      // RFC 5280 §4.1.2.5: notAfter is inclusive.
      if (nowMs > entry.notAfterMs) return { ok: false, reason: 'expired' };
      return { ok: true };
    },
    issued(event, options = {}) {
      add(event);
      if (options.advanceSeq && event.seq !== undefined && event.seq > seq) seq = event.seq;
    },
    successorAdmitted(serial, deviceId) {
      const entries = devices.get(deviceId);
      const [current, predecessor] = entries ?? [];
      if (current?.serial === serial && predecessor !== undefined) predecessor.retired = true;
    },
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
