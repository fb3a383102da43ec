import { describe, expect, it } from '@jest/globals';
import { MAX_CSR_BYTES, MAX_CSR_DEPTH, parseCsr } from '@enrolld/core/ca/index.js';
import { rejectionOf } from '../support/csr-factory.js';
import { csrWithAttribute, hostileCsrs, nested, privateAttribute } from '../support/hostile-csrs.js';

// CSR-10 (asn1js #131 unbounded recursion, #148 quadratic OID parsing): oversize and adversarial ASN.1 is rejected as
// bad-csr by the limit meant for it (size, depth, OID length, element count), so its work is bounded by that limit.
// How long each rejection takes, and how long it blocks the event loop, is measured by `npm run bench:csr`.

describe('CSR-10 resource bounds', () => {
  it('the cap is 16 KiB and the depth limit 16', () => {
    expect(MAX_CSR_BYTES).toBe(16 * 1024);
    expect(MAX_CSR_DEPTH).toBe(16);
    // CertificationRequest(1) > CRI(2) > [0](3) > Attribute(4) > SET(5) > 11 nested = depth 16: still accepted.
    expect(parseCsr(csrWithAttribute(privateAttribute(nested(11)))).requested.commonNames).toEqual(['bounds']);
  });

  it.each(hostileCsrs)('rejects %s as bad-csr by the limit meant for it', (_name, make, detail) => {
    expect(rejectionOf(() => parseCsr(make()))).toEqual({ kind: 'bad-csr', detail: expect.stringMatching(detail) });
  });
});
