// GET /.well-known/est/csrattrs (RFC 7030 §4.5): what the CA wants in a CSR.
//   CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID;  AttrOrOID ::= CHOICE { oid, attribute }
// As in the RFC's own example (§4.5.2): an EC key on P-256 (an Attribute id-ecPublicKey with the curve), signed with
// ecdsa-with-SHA256 (an OID), and challengePassword when proof-of-possession linking is required (§3.5).
import { derOid, derSequence, derSet } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';

export function csrAttrsDer(options: { requireChallengePassword: boolean }): Buffer {
  return derSequence(
    ...(options.requireChallengePassword ? [derOid(OID.challengePassword)] : []),
    derSequence(derOid(OID.ecPublicKey), derSet(derOid(OID.p256))),
    derOid(OID.ecdsaWithSha256),
  );
}
