// The broker's admission registry (core/src/admission/registry.ts, docs/architecture.md §7): per device the current
// certificate and, during the rotation overlap, its predecessor; everything else of ours is refused with a reason.
// Events arrive in any order and any number of times.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { REVOCATION_REASONS } from '@enrolld/protocol';
import { createAdmissionRegistry } from '@enrolld/core/admission/registry.js';

const NOW = 1_000_000;
const LATER = NOW + 3_600_000;

function setup() {
  const revoked = new Map<string, number>();
  const registry = createAdmissionRegistry({ revocationOf: (serial) => revoked.get(serial) });
  return { registry, revoked };
}

describe('admission registry', () => {
  it('admits the current certificate and, during the overlap, its predecessor; an older one is not current', () => {
    const { registry } = setup();
    expect(registry.admit('0a01', 'dev-1', NOW)).toEqual({ ok: false, reason: 'unknown' });
    registry.issued({ serial: '0a01', deviceId: 'dev-1', seq: 1, notAfterMs: LATER });
    registry.issued({ serial: '0a02', deviceId: 'dev-1', seq: 2, notAfterMs: LATER, predecessorSerial: '0a01' });
    expect(registry.admit('0a01', 'dev-1', NOW)).toEqual({ ok: true });
    expect(registry.admit('0a02', 'dev-1', NOW)).toEqual({ ok: true });
    expect(registry.currentOf('dev-1')).toBe('0a02');
    expect(registry.currentOf('dev-unknown')).toBeUndefined();
    registry.issued({ serial: '0a03', deviceId: 'dev-1', seq: 3, notAfterMs: LATER, predecessorSerial: '0a02' });
    expect(registry.admit('0a01', 'dev-1', NOW)).toEqual({ ok: false, reason: 'not-current' });
    expect(registry.admit('0a02', 'dev-1', NOW)).toEqual({ ok: true });
    expect(registry.admit('0a03', 'dev-1', NOW)).toEqual({ ok: true });
    expect(registry.size()).toBe(1);
  });

  it('refuses an older sibling after a re-enrollment (a certificate with no predecessor becomes the only current one)', () => {
    const { registry } = setup();
    registry.issued({ serial: '0b01', deviceId: 'dev-2', seq: 1, notAfterMs: LATER });
    registry.issued({ serial: '0b02', deviceId: 'dev-2', seq: 2, notAfterMs: LATER });
    expect(registry.admit('0b01', 'dev-2', NOW)).toEqual({ ok: false, reason: 'not-current' });
    expect(registry.admit('0b02', 'dev-2', NOW)).toEqual({ ok: true });
  });

  it('ends the overlap when the successor is admitted: the predecessor is refused as superseded before its revocation commits', () => {
    const { registry, revoked } = setup();
    registry.issued({ serial: '0c01', deviceId: 'dev-3', seq: 1, notAfterMs: LATER });
    registry.issued({ serial: '0c02', deviceId: 'dev-3', seq: 2, notAfterMs: LATER, predecessorSerial: '0c01' });
    // a predecessor's own CONNECT changes nothing
    registry.successorAdmitted('0c01', 'dev-3');
    expect(registry.admit('0c01', 'dev-3', NOW)).toEqual({ ok: true });
    registry.successorAdmitted('0c02', 'dev-3');
    expect(registry.admit('0c01', 'dev-3', NOW)).toEqual({ ok: false, reason: 'superseded' });
    expect(registry.admit('0c02', 'dev-3', NOW)).toEqual({ ok: true });
    // the same events heard again (NOTIFY, resync, a snapshot) do not bring it back
    registry.issued({ serial: '0c01', deviceId: 'dev-3', seq: 1, notAfterMs: LATER });
    registry.load({ lastSeq: 2, certificates: [{ serial: '0c01', deviceId: 'dev-3', seq: 1, notAfterMs: LATER, revoked: false }] });
    expect(registry.admit('0c01', 'dev-3', NOW)).toEqual({ ok: false, reason: 'superseded' });
    // the committed supersede says the same
    revoked.set('0c01', REVOCATION_REASONS.superseded);
    registry.revoked('0c01', 'dev-3');
    expect(registry.admit('0c01', 'dev-3', NOW)).toEqual({ ok: false, reason: 'superseded' });
  });

  it('says why: revoked, superseded, expired', () => {
    const { registry, revoked } = setup();
    registry.issued({ serial: '0c01', deviceId: 'dev-3', seq: 1, notAfterMs: LATER });
    registry.issued({ serial: '0c02', deviceId: 'dev-3', seq: 2, notAfterMs: LATER, predecessorSerial: '0c01' });
    revoked.set('0c01', REVOCATION_REASONS.superseded);
    registry.revoked('0c01', 'dev-3');
    expect(registry.admit('0c01', 'dev-3', NOW)).toEqual({ ok: false, reason: 'superseded' });
    revoked.set('0c02', REVOCATION_REASONS.keyCompromise);
    registry.revoked('0c02', 'dev-3');
    expect(registry.admit('0c02', 'dev-3', NOW)).toEqual({ ok: false, reason: 'revoked' });
    registry.issued({ serial: '0d01', deviceId: 'dev-4', seq: 3, notAfterMs: NOW });
    expect(registry.admit('0d01', 'dev-4', NOW)).toEqual({ ok: true }); // RFC 5280 §4.1.2.5: notAfter is inclusive
    expect(registry.admit('0d01', 'dev-4', NOW + 1)).toEqual({ ok: false, reason: 'expired' });
  });

  it('is idempotent and order-independent: the highest seq is current however the events arrive', () => {
    const { registry } = setup();
    const second = { serial: '0e02', deviceId: 'dev-5', seq: 8, notAfterMs: LATER, predecessorSerial: '0e01' };
    registry.issued(second);
    registry.issued({ serial: '0e01', deviceId: 'dev-5', seq: 5, notAfterMs: LATER });
    registry.issued(second);
    registry.issued({ serial: '0e00', deviceId: 'dev-5', seq: 2, notAfterMs: LATER });
    expect(registry.admit('0e02', 'dev-5', NOW)).toEqual({ ok: true });
    expect(registry.admit('0e01', 'dev-5', NOW)).toEqual({ ok: true });
    expect(registry.admit('0e00', 'dev-5', NOW)).toEqual({ ok: false, reason: 'not-current' });
  });

  it('ranks in-process events (no seq yet) above numbered ones and among themselves in the order heard', () => {
    const { registry } = setup();
    registry.issued({ serial: '0f01', deviceId: 'dev-6', seq: 40, notAfterMs: LATER });
    registry.issued({ serial: '0f02', deviceId: 'dev-6', notAfterMs: LATER, predecessorSerial: '0f01' });
    registry.issued({ serial: '0f03', deviceId: 'dev-6', notAfterMs: LATER, predecessorSerial: '0f02' });
    expect(registry.admit('0f03', 'dev-6', NOW)).toEqual({ ok: true });
    expect(registry.admit('0f02', 'dev-6', NOW)).toEqual({ ok: true });
    expect(registry.admit('0f01', 'dev-6', NOW)).toEqual({ ok: false, reason: 'not-current' });
    // The numbers arrive later (NOTIFY or resync): nothing changes.
    registry.issued({ serial: '0f02', deviceId: 'dev-6', seq: 41, notAfterMs: LATER, predecessorSerial: '0f01' }, { advanceSeq: true });
    registry.issued({ serial: '0f03', deviceId: 'dev-6', seq: 42, notAfterMs: LATER, predecessorSerial: '0f02' }, { advanceSeq: true });
    expect(registry.admit('0f03', 'dev-6', NOW)).toEqual({ ok: true });
    expect(registry.admit('0f02', 'dev-6', NOW)).toEqual({ ok: true });
    expect(registry.lastSeq()).toBe(42);
  });

  it('a load merges a snapshot without forgetting newer events, and prune forgets devices whose certificates all expired', () => {
    const { registry } = setup();
    registry.issued({ serial: '1001', deviceId: 'dev-7', notAfterMs: LATER });
    registry.load({
      certificates: [
        { serial: '1000', deviceId: 'dev-7', seq: 9, notAfterMs: LATER, revoked: false },
        { serial: '2000', deviceId: 'dev-8', seq: 10, notAfterMs: NOW, revoked: false },
        { serial: '3000', deviceId: 'dev-9', seq: 11, notAfterMs: LATER, revoked: true },
      ],
      lastSeq: 11,
    });
    expect(registry.admit('1001', 'dev-7', NOW)).toEqual({ ok: true });
    expect(registry.admit('1000', 'dev-7', NOW)).toEqual({ ok: false, reason: 'not-current' });
    expect(registry.admit('3000', 'dev-9', NOW)).toEqual({ ok: false, reason: 'unknown' });
    expect(registry.lastSeq()).toBe(11);
    expect(registry.prune(NOW + 1)).toBe(1);
    expect(registry.admit('2000', 'dev-8', NOW + 1)).toEqual({ ok: false, reason: 'unknown' });
    expect(registry.size()).toBe(1);
  });

  it('a successor numbered before its in-process predecessor stays current: the lineage decides, not the order', () => {
    // enrolld up: 0g02 and 0g03 were heard in-process (no seq yet); a lookup then brings 0g03 with its seq before the
    // NOTIFY numbers 0g02. Ranked by order alone, the unnumbered 0g02 outranked it, and 0g03, already admitted, was dropped.
    const { registry } = setup();
    registry.issued({ serial: '0g01', deviceId: 'dev-10', seq: 1, notAfterMs: LATER });
    registry.issued({ serial: '0g02', deviceId: 'dev-10', notAfterMs: LATER, predecessorSerial: '0g01' });
    registry.issued({ serial: '0g03', deviceId: 'dev-10', notAfterMs: LATER, predecessorSerial: '0g02' });
    registry.successorAdmitted('0g03', 'dev-10');
    registry.issued({ serial: '0g03', deviceId: 'dev-10', seq: 3, notAfterMs: LATER, predecessorSerial: '0g02' });
    expect(registry.currentOf('dev-10')).toBe('0g03');
    expect(registry.admit('0g03', 'dev-10', NOW)).toEqual({ ok: true });
    expect(registry.admit('0g02', 'dev-10', NOW)).toEqual({ ok: false, reason: 'superseded' });
  });

  it('a predecessor first heard after its successor was admitted is refused as superseded', () => {
    // Its issue event was lost; the successor came alone (NOTIFY) and was admitted. A probe with the predecessor then
    // makes a lookup bring it back, as the successor's predecessor, unrevoked while the supersede is in its batch.
    const { registry } = setup();
    registry.issued({ serial: '0h03', deviceId: 'dev-11', seq: 3, notAfterMs: LATER, predecessorSerial: '0h02' });
    registry.successorAdmitted('0h03', 'dev-11');
    registry.issued({ serial: '0h03', deviceId: 'dev-11', seq: 3, notAfterMs: LATER, predecessorSerial: '0h02' });
    registry.issued({ serial: '0h02', deviceId: 'dev-11', seq: 2, notAfterMs: LATER, predecessorSerial: '0h01' });
    expect(registry.admit('0h02', 'dev-11', NOW)).toEqual({ ok: false, reason: 'superseded' });
    expect(registry.admit('0h03', 'dev-11', NOW)).toEqual({ ok: true });
  });

  it('in any order of events, a certificate older than one admitted is never admitted again, and the newest is always admissible', () => {
    // One device renews again and again. Its events reach the registry the ways a broker hears them: in-process at once
    // (enrolld up) or not at all (a broker process of its own), by NOTIFY in commit order (delayed, or lost with the
    // connection), by resync pages, and by lookups whose read and merge are apart. Supersedes commit later, in batches.
    const ACTIONS = ['issue', 'notify', 'notify', 'lose', 'connect', 'commit', 'revocation', 'resync', 'probe', 'probe', 'lookup-read', 'lookup-merge'] as const;
    type Cert = { serial: string; seq: number; predecessorSerial?: string; revoked: boolean };
    const property = fc.property(fc.boolean(), fc.array(fc.tuple(fc.constantFrom(...ACTIONS), fc.nat()), { minLength: 20, maxLength: 60 }), (inProcess, steps) => {
      const revocations = new Map<string, number>();
      const registry = createAdmissionRegistry({ revocationOf: (serial) => revocations.get(serial) });
      const event = (c: Cert, numbered = true) => ({ serial: c.serial, deviceId: 'd', notAfterMs: LATER, predecessorSerial: c.predecessorSerial, ...(numbered ? { seq: c.seq } : {}) });
      const stored: Cert[] = [{ serial: 'c1', seq: 1, revoked: false }];
      registry.load({ lastSeq: 1, certificates: [{ ...event(stored[0]!), seq: 1, revoked: false }] });
      const notifies: Cert[] = [];
      const revocationNotifies: string[] = [];
      const supersedes: string[] = [];
      const lookups: Cert[][] = [];
      let newestAdmittedSeq = 0;
      // The store's answer to a lookup: the newest unrevoked certificate and its predecessor while unrevoked.
      const storeCurrent = (): Cert[] => {
        const live = stored.filter((c) => !c.revoked).sort((a, b) => b.seq - a.seq);
        const predecessor = live.find((c) => c.serial === live[0]?.predecessorSerial);
        return live[0] ? [live[0], ...(predecessor ? [predecessor] : [])].map((c) => ({ ...c })) : [];
      };
      const merge = (rows: Cert[]) => { for (const row of rows) if (!row.revoked) registry.issued(event(row)); };
      const admitOrLookUp = (serial: string) => {
        const first = registry.admit(serial, 'd', NOW);
        if (first.ok || (first.reason !== 'unknown' && first.reason !== 'not-current')) return first;
        merge(storeCurrent());
        return registry.admit(serial, 'd', NOW);
      };
      for (const [action, n] of steps) {
        const newest = stored.at(-1)!;
        if (action === 'issue' && stored.length < 8) {
          const c: Cert = { serial: `c${stored.length + 1}`, seq: newest.seq + 1, predecessorSerial: newest.serial, revoked: false };
          stored.push(c);
          if (inProcess) registry.issued(event(c, false));
          notifies.push(c);
        } else if ((action === 'notify' || action === 'lose') && notifies.length > 0) {
          const c = notifies.shift()!;
          if (action === 'notify') registry.issued(event(c), { advanceSeq: c.seq === registry.lastSeq() + 1 });
        } else if (action === 'connect') {
          expect({ connect: newest.serial, decision: admitOrLookUp(newest.serial) }).toEqual({ connect: newest.serial, decision: { ok: true } });
          registry.successorAdmitted(newest.serial, 'd');
          newestAdmittedSeq = newest.seq;
          if (newest.predecessorSerial) supersedes.push(newest.predecessorSerial);
        } else if (action === 'commit' && supersedes.length > 0) {
          const serial = supersedes.shift();
          const c = stored.find((x) => x.serial === serial)!;
          if (!c.revoked) revocationNotifies.push(c.serial);
          c.revoked = true;
        } else if (action === 'revocation' && revocationNotifies.length > 0) {
          const serial = revocationNotifies.shift()!;
          revocations.set(serial, REVOCATION_REASONS.superseded);
          registry.revoked(serial, 'd');
        } else if (action === 'resync') {
          for (const c of stored) if (c.seq > registry.lastSeq()) registry.issued(event(c), { advanceSeq: true });
        } else if (action === 'lookup-read') {
          lookups.push(storeCurrent());
        } else if (action === 'lookup-merge' && lookups.length > 0) {
          merge(lookups.shift()!);
        } else if (action === 'probe') {
          const older = stored.filter((c) => c.seq < newestAdmittedSeq);
          if (older.length === 0) continue;
          const victim = older[n % older.length]!;
          expect({ probe: victim.serial, ok: admitOrLookUp(victim.serial).ok }).toEqual({ probe: victim.serial, ok: false });
        }
      }
    });
    fc.assert(property, { numRuns: 10_000 });
  });
});
