// Access windows (core/src/acl/access-window.ts) on a manual clock: weekly windows in a time zone with its DST (Europe/Berlin
// springs forward on 2025-03-30 at 01:00 UTC, 02:00 CET → 03:00 CEST, and falls back on 2025-10-26 at 01:00 UTC, 03:00
// CEST → 02:00 CET), windows past midnight, from/until, and the next change against a minute-by-minute scan.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { accessScheduleSchema, WEEKDAYS, type AccessSchedule } from '@enrolld/protocol';
import { compileAccessWindow } from '@enrolld/core/acl/access-window.js';
import { createManualClock } from '../support/fakes/clock.js';

const at = (iso: string): number => Date.parse(iso);
const MINUTE = 60_000;

/** The schedule as the API would store it (validated), compiled, and a manual clock to walk it with. */
function windowOf(schedule: AccessSchedule, start: string) {
  const window = compileAccessWindow(accessScheduleSchema.parse(schedule));
  const clock = createManualClock(new Date(start));
  return {
    window,
    clock,
    state: () => window.stateAt(clock.now().getTime()),
    /** Moves the clock to an instant (forward only, as time does). */
    to(iso: string) {
      clock.advance(at(iso) - clock.now().getTime());
      return window.stateAt(clock.now().getTime());
    },
  };
}

describe('access windows', () => {
  it('Mon–Fri 08:00–18:00 Europe/Berlin: opens and closes on the local minute, in winter and summer time', () => {
    const w = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', until: '18:00' }] }, '2025-03-27T06:59:59.999Z');
    // Thursday 27 March, CET (UTC+1).
    expect(w.state()).toEqual({ open: false, changesAt: at('2025-03-27T07:00:00Z') });
    expect(w.to('2025-03-27T07:00:00Z')).toEqual({ open: true, changesAt: at('2025-03-27T17:00:00Z') });
    expect(w.window.isOpen(at('2025-03-27T16:59:59.999Z'))).toBe(true);
    // Friday 18:00 CET: closed over the weekend, through the spring-forward night, until Monday 08:00 CEST (UTC+2).
    expect(w.to('2025-03-28T17:00:00Z')).toEqual({ open: false, changesAt: at('2025-03-31T06:00:00Z') });
    expect(w.window.isOpen(at('2025-03-30T10:00:00Z'))).toBe(false);
    expect(w.to('2025-03-31T06:00:00Z')).toEqual({ open: true, changesAt: at('2025-03-31T16:00:00Z') });
  });

  it('on the spring-forward day a window across the skipped hour is an hour shorter, and one inside it does not open', () => {
    const across = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: [...WEEKDAYS], from: '01:00', until: '04:00' }] }, '2025-03-29T23:59:59Z');
    expect(across.state()).toEqual({ open: false, changesAt: at('2025-03-30T00:00:00Z') }); // 01:00 CET
    expect(across.to('2025-03-30T00:00:00Z')).toEqual({ open: true, changesAt: at('2025-03-30T02:00:00Z') }); // 04:00 CEST: 2 h later
    expect(across.window.isOpen(at('2025-03-30T01:00:00Z'))).toBe(true); // 03:00 CEST, right after the jump

    const inside = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: ['sun', 'mon'], from: '02:15', until: '02:45' }] }, '2025-03-29T12:00:00Z');
    // Sunday 02:15–02:45 does not exist on 30 March; the next opening is Monday 02:15 CEST (00:15 UTC).
    expect(inside.state()).toEqual({ open: false, changesAt: at('2025-03-31T00:15:00Z') });
    expect(inside.window.isOpen(at('2025-03-30T01:20:00Z'))).toBe(false); // 03:20 CEST

    // A window that starts in the skipped hour opens when the clocks jump past its start.
    const starts = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: ['sun'], from: '02:30', until: '05:00' }] }, '2025-03-30T00:30:00Z');
    expect(starts.state()).toEqual({ open: false, changesAt: at('2025-03-30T01:00:00Z') });
    expect(starts.to('2025-03-30T01:00:00Z')).toEqual({ open: true, changesAt: at('2025-03-30T03:00:00Z') });
  });

  it('on the fall-back day a window across the repeated hour is an hour longer, and is open in both 02:xx hours', () => {
    const w = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: [...WEEKDAYS], from: '01:00', until: '04:00' }] }, '2025-10-25T22:59:59Z');
    expect(w.state()).toEqual({ open: false, changesAt: at('2025-10-25T23:00:00Z') }); // 01:00 CEST
    expect(w.to('2025-10-25T23:00:00Z')).toEqual({ open: true, changesAt: at('2025-10-26T03:00:00Z') }); // 04:00 CET: 4 h later
    expect(w.window.isOpen(at('2025-10-26T00:30:00Z'))).toBe(true); // 02:30 CEST
    expect(w.window.isOpen(at('2025-10-26T01:30:00Z'))).toBe(true); // 02:30 CET

    const repeated = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: ['sun'], from: '02:00', until: '02:30' }] }, '2025-10-25T12:00:00Z');
    // 02:00–02:30 happens twice: the first time in CEST, the second in CET.
    expect(repeated.state()).toEqual({ open: false, changesAt: at('2025-10-26T00:00:00Z') });
    expect(repeated.to('2025-10-26T00:00:00Z')).toEqual({ open: true, changesAt: at('2025-10-26T00:30:00Z') });
    expect(repeated.to('2025-10-26T00:30:00Z')).toEqual({ open: false, changesAt: at('2025-10-26T01:00:00Z') });
    expect(repeated.to('2025-10-26T01:00:00Z')).toEqual({ open: true, changesAt: at('2025-10-26T01:30:00Z') });
  });

  it('22:00–06:00 runs past midnight into the day after each listed day, not into the listed day from the one before', () => {
    const w = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: ['fri'], from: '22:00', until: '06:00' }] }, '2025-06-05T21:00:00Z');
    // Thursday 23:00 CEST: Thursday is not listed.
    expect(w.state()).toEqual({ open: false, changesAt: at('2025-06-06T20:00:00Z') });
    expect(w.window.isOpen(at('2025-06-06T19:59:59.999Z'))).toBe(false); // Friday 21:59:59.999
    expect(w.to('2025-06-06T20:00:00Z')).toEqual({ open: true, changesAt: at('2025-06-07T04:00:00Z') }); // to Saturday 06:00
    expect(w.window.isOpen(at('2025-06-06T22:00:00Z'))).toBe(true); // Saturday 00:00
    expect(w.window.isOpen(at('2025-06-07T03:59:59.999Z'))).toBe(true);
    expect(w.to('2025-06-07T04:00:00Z')).toEqual({ open: false, changesAt: at('2025-06-13T20:00:00Z') });

    // until 00:00 after a later from is midnight; 24:00 is the same instant.
    for (const until of ['00:00', '24:00']) {
      const evening = windowOf({ timezone: 'UTC', weekly: [{ days: ['mon'], from: '20:00', until }] }, '2025-06-02T20:00:00Z');
      expect(evening.state()).toEqual({ open: true, changesAt: at('2025-06-03T00:00:00Z') });
    }
  });

  it('adjacent and overlapping windows are one stretch: it closes at the end of the last', () => {
    const w = windowOf({ timezone: 'UTC', weekly: [
      { days: ['mon'], from: '08:00', until: '12:00' },
      { days: ['mon'], from: '12:00', until: '14:00' },
      { days: ['mon'], from: '13:00', until: '18:00' },
    ] }, '2025-06-02T09:00:00Z');
    expect(w.state()).toEqual({ open: true, changesAt: at('2025-06-02T18:00:00Z') });
  });

  it('from/until bound the window on their own and together with weekly windows', () => {
    const dates = windowOf({ from: '2025-06-01T08:00:00+02:00', until: '2025-06-30T18:00:00+02:00' }, '2025-05-31T12:00:00Z');
    expect(dates.state()).toEqual({ open: false, changesAt: at('2025-06-01T06:00:00Z') });
    expect(dates.to('2025-06-01T06:00:00Z')).toEqual({ open: true, changesAt: at('2025-06-30T16:00:00Z') });
    expect(dates.window.isOpen(at('2025-06-30T15:59:59.999Z'))).toBe(true);
    expect(dates.to('2025-06-30T16:00:00Z')).toEqual({ open: false, changesAt: undefined });

    const both = windowOf({
      timezone: 'Europe/Berlin',
      weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', until: '18:00' }],
      until: '2025-06-04T12:00:00+02:00',
    }, '2025-06-04T07:00:00Z');
    expect(both.state()).toEqual({ open: true, changesAt: at('2025-06-04T10:00:00Z') }); // until, before 18:00
    expect(both.to('2025-06-04T10:00:00Z')).toEqual({ open: false, changesAt: undefined }); // never again

    const always = windowOf({ timezone: 'UTC', weekly: [{ days: [...WEEKDAYS], from: '00:00', until: '24:00' }] }, '2025-06-04T07:00:00Z');
    expect(always.state()).toEqual({ open: true, changesAt: undefined });
  });

  it('the state is kept until it changes: a later instant before the change reads the same, one after it is computed anew', () => {
    const w = windowOf({ timezone: 'Europe/Berlin', weekly: [{ days: ['mon'], from: '08:00', until: '18:00' }] }, '2025-06-02T07:00:00Z');
    const first = w.state();
    w.clock.advance(3 * 3_600_000);
    expect(w.state()).toBe(first);
    w.clock.advance(8 * 3_600_000);
    expect(w.state()).toEqual({ open: false, changesAt: at('2025-06-09T06:00:00Z') });
  });

  it('the next change is where a minute-by-minute scan sees the state flip, in zones with and without DST', () => {
    const zones = ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata', 'UTC'];
    const time = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.constantFrom(0, 15, 30, 45)).map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`);
    const span = fc.record({ days: fc.subarray([...WEEKDAYS], { minLength: 1 }), from: time, until: time }).filter((s) => s.from !== s.until);
    // Instants around the 2025 transitions of these zones and in between.
    const instant = fc.constantFrom('2025-03-09T06:00:00Z', '2025-03-29T20:00:00Z', '2025-04-05T14:00:00Z', '2025-06-15T12:00:00Z', '2025-10-04T15:30:00Z', '2025-10-25T20:00:00Z', '2025-11-01T22:00:00Z')
      .chain((base) => fc.integer({ min: 0, max: 3 * 24 * 60 }).map((minutes) => at(base) + minutes * MINUTE));
    fc.assert(
      fc.property(fc.constantFrom(...zones), fc.array(span, { minLength: 1, maxLength: 3 }), instant, (timezone, weekly, start) => {
        const window = compileAccessWindow(accessScheduleSchema.parse({ timezone, weekly }));
        const { open, changesAt } = window.stateAt(start);
        expect(window.isOpen(start)).toBe(open);
        const end = changesAt ?? start + 8 * 24 * 60 * MINUTE;
        for (let t = start; t < end; t += MINUTE) if (window.isOpen(t) !== open) throw new Error(`flips at ${new Date(t).toISOString()}, before ${changesAt}`);
        if (changesAt !== undefined) {
          expect(window.isOpen(changesAt - 1)).toBe(open);
          expect(window.isOpen(changesAt)).toBe(!open);
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('access schedule validation', () => {
  const problems = (access: unknown) => {
    const parsed = accessScheduleSchema.safeParse(access);
    return parsed.success ? [] : parsed.error.issues.map((i) => [i.path.join('.'), i.message]);
  };

  it.each<[string, unknown, string, RegExp]>([
    ['a time that is not HH:MM', { timezone: 'UTC', weekly: [{ days: ['mon'], from: '8:00', until: '18:00' }] }, 'weekly.0.from', /HH:MM/],
    ['25:00', { timezone: 'UTC', weekly: [{ days: ['mon'], from: '08:00', until: '25:00' }] }, 'weekly.0.until', /HH:MM/],
    ['a start at 24:00', { timezone: 'UTC', weekly: [{ days: ['mon'], from: '24:00', until: '06:00' }] }, 'weekly.0.from', /cannot start at 24:00/],
    ['equal from and until', { timezone: 'UTC', weekly: [{ days: ['mon'], from: '08:00', until: '08:00' }] }, 'weekly.0.until', /equal/],
    ['an unknown day', { timezone: 'UTC', weekly: [{ days: ['monday'], from: '08:00', until: '18:00' }] }, 'weekly.0.days.0', /./],
    ['no days', { timezone: 'UTC', weekly: [{ days: [], from: '08:00', until: '18:00' }] }, 'weekly.0.days', /./],
    ['an unknown time zone', { timezone: 'Mars/Olympus_Mons', weekly: [{ days: ['mon'], from: '08:00', until: '18:00' }] }, 'timezone', /unknown time zone/],
    ['weekly windows without a time zone', { weekly: [{ days: ['mon'], from: '08:00', until: '18:00' }] }, 'timezone', /time zone/],
    ['a date without its offset', { from: '2025-06-01T08:00:00' }, 'from', /offset/],
    ['until before from', { from: '2025-06-02T00:00:00Z', until: '2025-06-01T00:00:00Z' }, 'until', /after from/],
    ['nothing at all', {}, '', /weekly windows, from, until/],
    ['an unknown member', { timezone: 'UTC', until: '2025-06-01T00:00:00Z', hours: 3 }, '', /unrecognized|hours/i],
  ])('refuses %s, naming the field', (_name, access, path, message) => {
    expect(problems(access)).toContainEqual([path, expect.stringMatching(message)]);
  });
});
