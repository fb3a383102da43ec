import type { CreateServiceRequest, EnrollResponse } from '@enrolld/protocol';
import type { Enrollment } from '../enroll.js';
import type { createTokenIssuer } from '../tokens.js';

// `enrolld service create`: an admin makes a service identity and its first certificate in one call. It is the
// device path with the admin in the device's place: a service token (kind and profile fixed by the record) spent at
// once on the caller's CSR, so the issuance cycle, the checks and the audit trail are the enrollment's own. Calling it
// again for a name whose certificate is live needs `replace` (409 otherwise); the new certificate becomes the current one.

export function createServiceIdentities(deps: { tokens: ReturnType<typeof createTokenIssuer>; enrollment: Pick<Enrollment, 'enroll'> }) {
  return {
    async create(request: CreateServiceRequest, actor: string, context: { requestId?: string | undefined } = {}): Promise<EnrollResponse> {
      const [created] = await deps.tokens.create({ service: request.name, profile: request.profile, ttlSeconds: 60, replace: request.replace, environment: request.environment }, actor);
      const result = await deps.enrollment.enroll({ token: created!.token, csr: request.csr }, context);
      return result.response;
    },
  };
}

export type ServiceIdentities = ReturnType<typeof createServiceIdentities>;
