// Inputs for the fuzz targets: seeds from the corpus changed by a few byte-level edits (flip, set, insert, delete,
// truncate, splice with another seed), next to fully random bytes. fast-check draws and shrinks them.
import fc from 'fast-check';

type Edit =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; length: number }
  | { op: 'truncate'; at: number }
  | { op: 'splice'; at: number; other: number; from: number; length: number }
  | { op: 'length'; at: number; byte: number };

function applyEdits(seed: Uint8Array, edits: Edit[], seeds: readonly Uint8Array[]): Uint8Array {
  let bytes = Buffer.from(seed);
  for (const edit of edits) {
    // Positions are drawn as fractions of the current length, so every edit lands inside the input.
    const at = bytes.length === 0 ? 0 : edit.at % (bytes.length + 1);
    switch (edit.op) {
      case 'flip':
        if (at < bytes.length) bytes[at]! ^= 1 << edit.bit;
        break;
      case 'set':
      case 'length':
        if (at < bytes.length) bytes[at] = edit.byte;
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), edit.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + edit.length)]);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
      case 'splice': {
        const other = seeds[edit.other % seeds.length]!;
        const from = other.length === 0 ? 0 : edit.from % other.length;
        bytes = Buffer.concat([bytes.subarray(0, at), other.subarray(from, from + edit.length), bytes.subarray(at)]);
        break;
      }
    }
  }
  return bytes;
}

const position = fc.nat({ max: 1 << 20 });
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: position, byte: fc.nat({ max: 255 }) }),
  // Boundary bytes of lengths and tags: 0x00, 0x7f, 0x80, 0x81, 0xff …
  fc.record({ op: fc.constant('length' as const), at: position, byte: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff) }),
  fc.record({ op: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ op: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: position }),
  fc.record({ op: fc.constant('splice' as const), at: position, other: fc.nat(), from: position, length: fc.integer({ min: 1, max: 64 }) }),
);

/** Mutated seeds (most of the time), seeds as they are, and random bytes. */
export function mutatedInputs(seeds: readonly Uint8Array[], options: { maxRandomBytes?: number } = {}): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('a fuzz target needs at least one seed');
  const seed = fc.nat({ max: seeds.length - 1 }).map((i) => seeds[i]!);
  return fc.oneof(
    { weight: 8, arbitrary: fc.tuple(seed, fc.array(edit, { minLength: 1, maxLength: 6 })).map(([s, edits]) => applyEdits(s, edits, seeds)) },
    { weight: 1, arbitrary: seed },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: options.maxRandomBytes ?? 256 }) },
  );
}
