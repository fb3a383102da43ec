// The session timer (server/src/mqtt/session-expiry.ts) on a manual clock and manual timers: one timer per session for
// whichever comes first, the certificate's notAfter or the end of its profile's access window; a profile update moves it
// or closes the session at once. A far deadline is approached in steps, each deciding again on the wall clock.
import { describe, expect, it } from '@jest/globals';
import { EventEmitter } from 'node:events';
import type { Client } from 'aedes';
import { pino } from 'pino';
import { accessScheduleSchema, type AccessSchedule } from '@enrolld/protocol';
import { compileAccessWindow, type AccessWindow } from '@enrolld/core/acl/access-window.js';
import { createSessionExpiry } from '../../server/src/mqtt/session-expiry.js';
import type { PeerIdentity } from '../../server/src/mqtt/peer-identity.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createManualTimers } from '../support/fakes/timers.js';

const START = Date.parse('2025-06-02T07:00:00Z'); // Monday 09:00 in Berlin

function fakeClient(): Client & { conn: EventEmitter & { destroyed: boolean } } {
  const conn = Object.assign(new EventEmitter(), {
    destroyed: false,
    remoteAddress: '127.0.0.1',
    destroy() {
      if (conn.destroyed) return;
      conn.destroyed = true;
      conn.emit('close');
    },
  });
  return { id: 'press-1', conn } as unknown as Client & { conn: typeof conn };
}

function setup(schedule: AccessSchedule | undefined, notAfterMs = START + 30 * 86_400_000) {
  const clock = createManualClock(new Date(START));
  const timers = createManualTimers(clock);
  const closed: string[] = [];
  let access: AccessWindow | undefined = schedule && compileAccessWindow(accessScheduleSchema.parse(schedule));
  const expiry = createSessionExpiry({
    clock,
    timers,
    log: pino({ level: 'silent' }),
    metrics: { sessionExpired: () => closed.push('expired'), sessionOutsideWindow: () => closed.push('outside-window') },
    accessOf: (profile) => (profile === 'shift' ? access : undefined),
  });
  const identity: PeerIdentity = {
    kind: 'device', deviceId: 'press-1', profile: 'shift', profileVersion: 1, group: undefined, serial: '1a', notBefore: START - 60_000, notAfter: notAfterMs,
  };
  const client = fakeClient();
  return {
    clock, timers, closed, expiry, identity, client,
    /** A profile update: the broker's catalog now holds this window. */
    update(next: AccessSchedule | undefined) {
      access = next && compileAccessWindow(accessScheduleSchema.parse(next));
      expiry.recheck(client);
    },
  };
}

const WORKDAY: AccessSchedule = { timezone: 'Europe/Berlin', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', until: '18:00' }] };

describe('session timer', () => {
  it('closes the session when its window ends (18:00 Berlin), not a millisecond before, and counts it', async () => {
    const s = setup(WORKDAY);
    s.expiry.watch(s.client, s.identity);
    expect(s.timers.pending).toBe(1);
    await s.timers.advance(Date.parse('2025-06-02T16:00:00Z') - START - 1);
    expect([s.client.conn.destroyed, s.closed]).toEqual([false, []]);
    await s.timers.advance(1);
    expect([s.client.conn.destroyed, s.closed]).toEqual([true, ['outside-window']]);
    expect(s.timers.pending).toBe(0);
  });

  it('a certificate that expires inside the window ends the session as expired, at notAfter + 1 ms', async () => {
    const notAfter = START + 3_600_000;
    const s = setup(WORKDAY, notAfter);
    s.expiry.watch(s.client, s.identity);
    await s.timers.advance(3_600_000);
    expect(s.client.conn.destroyed).toBe(false);
    await s.timers.advance(1);
    expect(s.closed).toEqual(['expired']);
  });

  it('without a window only notAfter counts; a closed socket clears its timer', async () => {
    const s = setup(undefined, START + 10_000);
    s.expiry.watch(s.client, s.identity);
    s.client.conn.destroy();
    expect(s.timers.pending).toBe(0);
    await s.timers.advance(20_000);
    expect(s.closed).toEqual([]);
  });

  it('a profile update that closes the window closes the session at once; one that moves its end re-arms the timer', async () => {
    const moved = setup(WORKDAY);
    moved.expiry.watch(moved.client, moved.identity);
    moved.update({ ...WORKDAY, weekly: [{ days: ['mon'], from: '08:00', until: '10:00' }] });
    expect(moved.timers.pending).toBe(1);
    await moved.timers.advance(Date.parse('2025-06-02T08:00:00Z') - START - 1);
    expect(moved.client.conn.destroyed).toBe(false);
    await moved.timers.advance(1);
    expect(moved.closed).toEqual(['outside-window']);

    const shut = setup(WORKDAY);
    shut.expiry.watch(shut.client, shut.identity);
    shut.update({ timezone: 'Europe/Berlin', weekly: [{ days: ['sat', 'sun'], from: '08:00', until: '18:00' }] });
    expect([shut.client.conn.destroyed, shut.closed, shut.timers.pending]).toEqual([true, ['outside-window'], 0]);

    const lifted = setup(WORKDAY);
    lifted.expiry.watch(lifted.client, lifted.identity);
    lifted.update(undefined);
    await lifted.timers.advance(Date.parse('2025-06-02T20:00:00Z') - START);
    expect(lifted.client.conn.destroyed).toBe(false);
  });

  it('waits for a far notAfter in power-of-two steps and still closes at notAfter + 1 ms', async () => {
    const notAfter = START + 30 * 86_400_000;
    const s = setup(undefined, notAfter);
    const delays: number[] = [];
    const setTimeout = s.timers.setTimeout.bind(s.timers);
    s.timers.setTimeout = (fn, ms) => (delays.push(ms), setTimeout(fn, ms));
    s.expiry.watch(s.client, s.identity);
    await s.timers.advance(notAfter - START);
    expect(s.client.conn.destroyed).toBe(false);
    await s.timers.advance(1);
    expect(s.closed).toEqual(['expired']);
    const coarse = delays.filter((ms) => ms >= 2 ** 17);
    expect(coarse.length).toBeGreaterThan(5);
    for (const ms of coarse) expect([Number.isInteger(Math.log2(ms)), ms <= 2 ** 30]).toEqual([true, true]);
    expect(delays.at(-1)).toBeLessThan(2 ** 17);
  });

  it('a wall-clock step past notAfter is seen at the next step, not when the original wait would have ended', async () => {
    const s = setup(undefined, START + 30 * 86_400_000);
    s.expiry.watch(s.client, s.identity);
    s.clock.step(31 * 86_400_000);
    await s.timers.advance(2 ** 30);
    expect(s.closed).toEqual(['expired']);
  });

  it('a window that ends with until closes the session then', async () => {
    const s = setup({ until: new Date(START + 5_000).toISOString() });
    s.expiry.watch(s.client, s.identity);
    await s.timers.advance(4_999);
    expect(s.client.conn.destroyed).toBe(false);
    await s.timers.advance(1);
    expect(s.closed).toEqual(['outside-window']);
  });
});
