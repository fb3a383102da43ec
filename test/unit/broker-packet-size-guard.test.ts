// The packet-size guard follows MQTT fixed headers across arbitrary chunk boundaries: it names the first packet over
// the limit from its header alone, and never one that fits.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createPacketSizeGuard } from '../../server/src/mqtt/packet-size-guard.js';

/** A packet of type PUBLISH with `length` body bytes (MQTT 3.1.1 §2.2.3 Remaining Length encoding). */
function packet(length: number): Buffer {
  const header = [0x30];
  let x = length;
  do {
    let byte = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) byte |= 0x80;
    header.push(byte);
  } while (x > 0);
  return Buffer.concat([Buffer.from(header), Buffer.alloc(length, 0x55)]);
}

describe('packet-size guard', () => {
  it('finds the first oversize packet, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 2, max: 20_005 }), fc.array(fc.integer({ min: 1, max: 5000 }), { maxLength: 40 }), (lengths, max, cuts) => {
        const packets = lengths.map(packet);
        const stream = Buffer.concat(packets);
        const firstOver = packets.find((p) => p.length > max)?.length;
        const guard = createPacketSizeGuard(() => max);
        let found: number | undefined;
        for (let at = 0, i = 0; at < stream.length && found === undefined; i++) {
          const size = cuts.length > 0 ? cuts[i % cuts.length]! : stream.length;
          found = guard.oversize(stream.subarray(at, at + size));
          at += size;
        }
        expect(found).toBe(firstOver);
      }),
    );
  });

  it('names a 200 MB packet from its five header bytes, before any body', () => {
    const guard = createPacketSizeGuard(() => 128 * 1024);
    expect(guard.oversize(Buffer.from([0x30, 0x80]))).toBeUndefined();
    expect(guard.oversize(Buffer.from([0x80, 0xe8, 0x5f]))).toBe(5 + 95 * 2 ** 21 + 104 * 2 ** 14);
  });
});
