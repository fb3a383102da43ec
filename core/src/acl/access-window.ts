import type { AccessSchedule } from '@enrolld/protocol';
import { WEEKDAYS } from '@enrolld/protocol';

// A profile's access window (docs/architecture.md §6, access windows), compiled once when the profile loads: whether an
// identity may be connected at an instant, and when that next changes, so the broker refuses a CONNECT outside it and
// closes a session when it ends. Pure: time comes in as milliseconds since the epoch (the caller's Clock).
//
// Weekly windows are wall-clock times in an IANA zone, read with Intl.DateTimeFormat, so DST is the zone's own: a window
// 01:00–04:00 lasts two hours on the day clocks spring forward and four on the day they fall back, and a window that lies
// in the skipped hour does not open that day. `from`/`until` are instants.
//
// The next change is found among the instants where the state can change: every window boundary on the days ahead,
// converted with each UTC offset the zone has over that stretch, the zone's offset changes, and `from`/`until`. The
// state is constant between them, so the first of them whose state differs is the change. Weekly windows repeat each
// week, so a schedule that does not change within eight days never does (but for `from`/`until`, always considered).

const DAY_MS = 86_400_000;
/** How far ahead weekly boundaries are looked for: a week and a day, so a window that opened yesterday is seen too. */
const HORIZON_DAYS = 8;
/** Offsets are sampled this often to find the zone's changes (DST transitions are months apart). */
const OFFSET_SAMPLE_MS = 6 * 3_600_000;

export interface AccessState {
  /** Whether an identity of the profile may be connected now. */
  open: boolean;
  /** The instant (ms) at which `open` flips; undefined when it never does. */
  changesAt: number | undefined;
}

export interface AccessWindow {
  isOpen(at: number): boolean;
  /** The state at `at` and its next change; kept until that change, so a CONNECT storm computes it once. */
  stateAt(at: number): AccessState;
}

interface Span {
  /** Indexed by ISO weekday - 1 (Monday 0). */
  days: boolean[];
  fromMs: number;
  untilMs: number;
}

const msOfTime = (hhmm: string): number => (Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5))) * 60_000;
const floorMod = (value: number, modulus: number): number => ((value % modulus) + modulus) % modulus;

/** Compiles a schedule that accessScheduleSchema accepted; throws RangeError for a time zone this runtime lacks. */
export function compileAccessWindow(schedule: AccessSchedule): AccessWindow {
  const fromAt = schedule.from === undefined ? undefined : Date.parse(schedule.from);
  const untilAt = schedule.until === undefined ? undefined : Date.parse(schedule.until);
  const spans: Span[] | undefined = schedule.weekly?.map((w) => ({
    days: WEEKDAYS.map((day) => w.days.includes(day)),
    fromMs: msOfTime(w.from),
    untilMs: msOfTime(w.until),
  }));
  const format = spans
    ? new Intl.DateTimeFormat('en-US', {
        timeZone: schedule.timezone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      })
    : undefined;

  /** The zone's wall-clock time at `at`, as milliseconds since the epoch of that wall time read as UTC. */
  function wallOf(at: number): number {
    const fields: Record<string, number> = {};
    for (const part of format!.formatToParts(at)) if (part.type !== 'literal') fields[part.type] = Number(part.value);
    return Date.UTC(fields.year!, fields.month! - 1, fields.day!, fields.hour!, fields.minute!, fields.second!) + floorMod(at, 1000);
  }
  const offsetAt = (at: number): number => wallOf(at) - at;

  function weeklyOpen(at: number): boolean {
    const wall = wallOf(at);
    const day = (new Date(wall).getUTCDay() + 6) % 7;
    const ms = floorMod(wall, DAY_MS);
    for (const span of spans!) {
      if (span.fromMs < span.untilMs) {
        if (span.days[day] && ms >= span.fromMs && ms < span.untilMs) return true;
      } else {
        // Past midnight: the evening of a listed day, or the morning after one.
        if (span.days[day] && ms >= span.fromMs) return true;
        if (span.days[(day + 6) % 7] && ms < span.untilMs) return true;
      }
    }
    return false;
  }

  function isOpen(at: number): boolean {
    if (fromAt !== undefined && at < fromAt) return false;
    if (untilAt !== undefined && at >= untilAt) return false;
    return spans === undefined || weeklyOpen(at);
  }

  /** The first instant in (lo, hi] whose offset is not lo's (there is one). */
  function offsetChange(lo: number, hi: number): number {
    const before = offsetAt(lo);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (offsetAt(mid) === before) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /** Every instant after `at` at which the state may change, in order. */
  function candidatesAfter(at: number): number[] {
    const out: number[] = [];
    if (fromAt !== undefined && fromAt > at) out.push(fromAt);
    if (untilAt !== undefined && untilAt > at) out.push(untilAt);
    if (spans) {
      const end = at + HORIZON_DAYS * DAY_MS;
      const offsets = new Set([offsetAt(at)]);
      let previous = at;
      let previousOffset = offsetAt(at);
      while (previous < end) {
        const next = Math.min(previous + OFFSET_SAMPLE_MS, end);
        const offset = offsetAt(next);
        if (offset !== previousOffset) {
          out.push(offsetChange(previous, next));
          offsets.add(offset);
        }
        previous = next;
        previousOffset = offset;
      }
      // From the day before (a window past midnight ends on the day after it started) to the end of the horizon.
      const firstDay = Math.floor(wallOf(at) / DAY_MS) - 1;
      for (let day = firstDay; day <= firstDay + HORIZON_DAYS + 1; day++) {
        for (const span of spans) {
          for (const boundary of [span.fromMs, span.untilMs]) {
            for (const offset of offsets) {
              const instant = day * DAY_MS + boundary - offset;
              if (instant > at) out.push(instant);
            }
          }
        }
      }
    }
    return out.sort((a, b) => a - b);
  }

  let cached: { from: number; state: AccessState } | undefined;
  return {
    isOpen,
    stateAt(at) {
      const hit = cached;
      if (hit && at >= hit.from && (hit.state.changesAt === undefined || at < hit.state.changesAt)) return hit.state;
      const open = isOpen(at);
      const changesAt = candidatesAfter(at).find((instant) => isOpen(instant) !== open);
      const state = { open, changesAt };
      cached = { from: at, state };
      return state;
    },
  };
}
