import { identityUri, isValidDeviceId } from '@enrolld/protocol';
import type { IdentityKind } from '@enrolld/protocol';
import { EnrollError } from '../errors.js';
import type { ParsedCsr } from './types.js';

// docs/architecture.md: the certificate's names, its kind and its profile come from the server's record, never from
// the CSR. A CSR may leave its names empty, or name exactly this identity (CN=<id>, SAN URI urn:enrolld:<kind>:<id>);
// anything else asks for another identity, or another kind, and is refused (step-ca `sans` 1:1, Boulder matchesCSR).
// Nothing else a CSR asks for (extensions, a profile) is read.

const show = (value: string): string => JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);

/** Throws EnrollError('identity-mismatch') naming every problem, if the CSR's names are not exactly this identity's. */
export function assertCsrNamesIdentity(parsed: Pick<ParsedCsr, 'requested'>, kind: IdentityKind, deviceId: string): void {
  if (!isValidDeviceId(deviceId)) throw new EnrollError('internal', 'id from the record is not valid');
  const r = parsed.requested;
  const problems: string[] = [];
  if (r.commonNames.length > 1) problems.push(`subject has ${r.commonNames.length} CNs; at most one is allowed`);
  for (const cn of r.commonNames) if (cn !== deviceId) problems.push(`subject CN ${show(cn)} is not the ${kind} id ${show(deviceId)}`);
  if (r.otherSubjectAttributes > 0) {
    problems.push(`subject has ${r.otherSubjectAttributes} attribute(s) besides CN; only CN=<id> is allowed`);
  }
  const expectedUri = identityUri(kind, deviceId);
  if (r.uris.length > 1) problems.push(`subjectAltName has ${r.uris.length} URIs; at most one is allowed`);
  for (const uri of r.uris) if (uri !== expectedUri) problems.push(`subjectAltName URI ${show(uri)} is not ${show(expectedUri)}`);
  if (r.dnsNames.length > 0) problems.push(`subjectAltName DNS names are not allowed (${r.dnsNames.map(show).join(', ')})`);
  if (r.ipAddresses.length > 0) problems.push(`subjectAltName IP addresses are not allowed (${r.ipAddresses.map(show).join(', ')})`);
  if (r.emails.length > 0) problems.push(`subjectAltName email addresses are not allowed (${r.emails.map(show).join(', ')})`);
  if (r.otherNames > 0) problems.push(`subjectAltName has ${r.otherNames} name(s) of another type; only the identity URI is allowed`);
  if (problems.length > 0) {
    throw new EnrollError('identity-mismatch', `CSR does not name ${kind} ${show(deviceId)}: ${problems.slice(0, 4).join('; ')}`);
  }
}
