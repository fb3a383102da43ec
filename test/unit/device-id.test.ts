import { describe, expect, it } from '@jest/globals';
import { isValidDeviceId } from '@enrolld/protocol';

describe('device id rule (CSR-07)', () => {
  it.each(['a', 'sensor-0001', 'gw.eu-1_a', '0', 'a'.repeat(63)])('accepts %p', (id) => {
    expect(isValidDeviceId(id)).toBe(true);
  });
  it.each(['', 'A', 'Sensor', '-a', '.a', 'a+b', 'a#', 'a/b', 'a\u0000', 'a b', ' a', 'a\u202e', 'é', 'a'.repeat(64), 42, null])(
    'rejects %p',
    (id) => {
      expect(isValidDeviceId(id)).toBe(false);
    },
  );
});
