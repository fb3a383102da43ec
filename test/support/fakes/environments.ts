// The IssuingCas port (core/src/environments/ports.ts) of an installation with one environment, `default`, whose issuing
// CA is the one given: what the use cases see in unit tests and in integration tests that build them by hand.
import { X509Certificate } from 'node:crypto';
import { DEFAULT_ENVIRONMENT } from '@enrolld/protocol';
import type { IssuingCa } from '@enrolld/core/ca/types.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { EnvironmentCaFactory, IssuingCas } from '@enrolld/core/environments/ports.js';

export function singleEnvironmentCas(ca: IssuingCa): IssuingCas {
  const issuer = new X509Certificate(ca.certificateDer);
  const only = async (environment: string) => {
    if (environment !== DEFAULT_ENVIRONMENT) throw new EnrollError('bad-request', `unknown environment "${environment}"`);
    return ca;
  };
  return {
    forIssuance: only,
    forCrl: only,
    issuerOf: async (certificate) => (certificate.checkIssued(issuer) && certificate.verify(issuer.publicKey) ? DEFAULT_ENVIRONMENT : undefined),
  };
}

/** A CA factory for use cases built by tests that never create an environment. */
export const noEnvironmentCreation: EnvironmentCaFactory = {
  create: () => Promise.reject(new Error('this test creates no environment')),
};
