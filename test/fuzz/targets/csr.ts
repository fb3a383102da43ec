// The CSR parser (core/src/ca/csr.ts) on hostile bytes: its contract is to answer EnrollError (bad-csr,
// bad-signature-algorithm, bad-key) for anything malformed and never to throw anything else. Inputs go in as raw
// bytes (DER, PEM or base64 text) and, for half of them, as a string.
import { parseCsr } from '@enrolld/core/ca/csr.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { mutatedInputs } from '../mutate.js';
import type { FuzzTarget } from '../engine.js';

const ALLOWED = new Set(['bad-csr', 'bad-signature-algorithm', 'bad-key']);

export const csrTarget: FuzzTarget = {
  name: 'csr',
  inputs: (seeds) => mutatedInputs(seeds, { maxRandomBytes: 512 }),
  async setup() {
    return {
      execute(input) {
        const asText = input.length % 2 === 1;
        try {
          parseCsr(asText ? Buffer.from(input).toString('latin1') : input);
        } catch (error) {
          if (error instanceof EnrollError && ALLOWED.has(error.kind)) return;
          throw error;
        }
      },
      async stop() {},
    };
  },
};

