// Follows the MQTT fixed headers (MQTT 3.1.1 §2.2) across the chunks of one connection, so a packet larger than the
// limit is known from its first bytes: nothing of it is buffered, however large the Remaining Length it announces.
// Malformed lengths are left to the parser, which closes the connection.

export interface PacketSizeGuard {
  /** The total size of the first packet in the chunk that exceeds the limit, or undefined when all fit. */
  oversize(chunk: Buffer): number | undefined;
}

export function createPacketSizeGuard(maxBytes: () => number): PacketSizeGuard {
  /** Bytes of the current packet's body still to skip. */
  let bodyLeft = 0;
  /** Within a fixed header: bytes of it seen (0 = next byte is a control byte), and the length decoded so far. */
  let headerBytes = 0;
  let length = 0;
  let multiplier = 1;
  let malformed = false;

  return {
    oversize(chunk) {
      if (malformed) return undefined;
      let i = 0;
      while (i < chunk.length) {
        if (bodyLeft > 0) {
          const skip = Math.min(bodyLeft, chunk.length - i);
          bodyLeft -= skip;
          i += skip;
          continue;
        }
        const byte = chunk[i++]!;
        if (headerBytes === 0) {
          headerBytes = 1;
          length = 0;
          multiplier = 1;
          continue;
        }
        headerBytes++;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if (byte & 0x80) {
          // At most four length bytes (MQTT 3.1.1 §2.2.3).
          if (headerBytes > 4) {
            malformed = true;
            return undefined;
          }
          continue;
        }
        const total = headerBytes + length;
        if (total > maxBytes()) return total;
        bodyLeft = length;
        headerBytes = 0;
      }
      return undefined;
    },
  };
}
