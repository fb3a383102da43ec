import type { CreateServiceRequest, EnrollResponse, IdentityKind } from '@enrolld/protocol';
import type { Enrollment } from '../enroll.js';
import type { createTokenIssuer, TokenTerms } from '../tokens.js';

// `enrolld service create` (and `enrolld admin create`): an admin makes an identity and its certificate in one call.
// It is the device path with the admin in the device's place: a token (kind and profile fixed by the record) spent at
// once on the caller's CSR, so the issuance cycle, the checks and the audit trail are the enrollment's own, and the
// certificate's audit row names the admin. Calling it again for a name whose certificate is live needs `replace`
// (409 otherwise); the new certificate becomes the current one.

export interface IdentityCertificateDeps {
  tokens: Pick<ReturnType<typeof createTokenIssuer>, 'issue'>;
  enrollment: Pick<Enrollment, 'enroll'>;
}

export interface IdentityCertificateRequest extends Pick<TokenTerms, 'profile' | 'replace' | 'afterCompromise'> {
  kind: IdentityKind;
  name: string;
  csr: string;
}

/** A certificate for one identity of `kind`, signed from the caller's CSR under the caller's name. */
export async function issueIdentityCertificate(
  deps: IdentityCertificateDeps,
  request: IdentityCertificateRequest,
  actor: string,
  context: { requestId?: string | undefined } = {},
): Promise<EnrollResponse> {
  const { kind, name, csr, ...terms } = request;
  const [created] = await deps.tokens.issue(kind, [name], { ...terms, ttlSeconds: 60 }, actor);
  const result = await deps.enrollment.enroll({ token: created!.token, csr }, { requestId: context.requestId, actor });
  return result.response;
}

export function createServiceIdentities(deps: IdentityCertificateDeps) {
  return {
    create(request: CreateServiceRequest, actor: string, context: { requestId?: string | undefined } = {}): Promise<EnrollResponse> {
      return issueIdentityCertificate(deps, { kind: 'service', name: request.name, profile: request.profile, csr: request.csr, replace: request.replace }, actor, context);
    },
  };
}

export type ServiceIdentities = ReturnType<typeof createServiceIdentities>;
