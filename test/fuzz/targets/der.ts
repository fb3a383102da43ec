// The DER reader (core/src/ca/der.ts) on hostile bytes: the well-formedness check, then a walk of every element with
// the typed decoders (OID, INTEGER, time). Its contract is DerError for anything malformed, and nothing else.
import { assertWellFormed, checkIntegerContent, decodeOid, decodeTime, DerError, readChildren, readTlv, TAG_INTEGER, TAG_OID, TAG_GENERALIZED_TIME, TAG_UTC_TIME, type Tlv } from '@enrolld/core/ca/der.js';
import { mutatedInputs } from '../mutate.js';
import type { FuzzTarget } from '../engine.js';

function walk(buf: Uint8Array, tlv: Tlv, depth: number): void {
  if (tlv.tag & 0x20) {
    if (depth < 32) for (const child of readChildren(buf, tlv)) walk(buf, child, depth + 1);
    return;
  }
  if (tlv.tag === TAG_OID) decodeOid(buf, tlv.valueStart, tlv.end);
  else if (tlv.tag === TAG_INTEGER) checkIntegerContent(buf, tlv.valueStart, tlv.end);
  else if (tlv.tag === TAG_UTC_TIME || tlv.tag === TAG_GENERALIZED_TIME) decodeTime(buf, tlv);
}

export const derTarget: FuzzTarget = {
  name: 'der',
  inputs: (seeds) => mutatedInputs(seeds, { maxRandomBytes: 256 }),
  async setup() {
    return {
      execute(input) {
        try {
          // The unchecked walk first: the typed readers must refuse what the well-formedness check would.
          if (input.length > 0) walk(input, readTlv(input, 0, input.length), 0);
          assertWellFormed(input, 0, input.length, { maxDepth: 16, maxNodes: 512 });
        } catch (error) {
          if (error instanceof DerError) return;
          throw error;
        }
      },
      async stop() {},
    };
  },
};
