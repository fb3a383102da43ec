// The console's in-process event source: presence (connected now, last seen, a device holding two sessions during a
// takeover), the connected-over-time series, and a listener that throws does not keep events from the others.
import { describe, expect, it } from '@jest/globals';
import { createFleetEvents, type FleetEvent } from '@enrolld/core/fleet/live-events.js';
import { createManualClock } from '../support/fakes/clock.js';

const session = (type: 'connected' | 'disconnected', deviceId: string): FleetEvent => ({ type, deviceId, serial: '01', at: '' });

describe('fleet live events', () => {
  it('counts a device as connected until its last session closes, and remembers when it was last seen', () => {
    const clock = createManualClock(new Date('2026-01-01T00:00:00Z'));
    const events = createFleetEvents({ now: () => clock.now() });
    events.publish(session('connected', 'a'));
    clock.advance(1000);
    events.publish(session('connected', 'a')); // takeover: the new session arrives before the old one closes
    events.publish(session('disconnected', 'a'));
    expect(events.isConnected('a')).toBe(true);
    clock.advance(1000);
    events.publish(session('disconnected', 'a'));
    expect(events.isConnected('a')).toBe(false);
    expect(events.lastSeen('a')).toEqual(new Date('2026-01-01T00:00:02Z'));
    expect(events.connectedIds()).toEqual([]);
  });

  it('samples connected devices at most once per interval, keeping the newest value of each interval', () => {
    const clock = createManualClock(new Date('2026-01-01T00:00:00Z'));
    const events = createFleetEvents({ now: () => clock.now(), sampleMs: 5000, maxSamples: 2 });
    events.publish(session('connected', 'a'));
    clock.advance(1000);
    events.publish(session('connected', 'b'));
    clock.advance(5000);
    events.publish(session('connected', 'c'));
    clock.advance(5000);
    events.publish(session('disconnected', 'a'));
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    expect(events.connectedSeries()).toEqual([
      { at: t0 + 6000, connected: 3 },
      { at: t0 + 11_000, connected: 2 },
      { at: t0 + 11_000, connected: 2 },
    ]);
  });

  it('delivers to every listener even when one throws, and not after unsubscribe', () => {
    const events = createFleetEvents();
    const heard: string[] = [];
    events.subscribe(() => {
      throw new Error('closed stream');
    });
    const off = events.subscribe((e) => heard.push(e.type));
    events.publish({ type: 'refused', deviceId: 'a', serial: '01', reason: 'revoked', at: '' });
    off();
    events.publish(session('connected', 'a'));
    expect(heard).toEqual(['refused']);
  });
});
