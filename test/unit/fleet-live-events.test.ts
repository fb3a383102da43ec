// The console's in-process event source: a listener that throws does not keep events from the others.
import { describe, expect, it } from '@jest/globals';
import { createFleetEvents, type FleetEvent } from '@enrolld/core/fleet/live-events.js';

const session = (type: 'connected' | 'disconnected', deviceId: string): FleetEvent => ({ type, deviceId, serial: '01', at: '' });

describe('fleet live events', () => {
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
