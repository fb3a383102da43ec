// PKCS#7 / CMS certs-only (RFC 5652 §5; RFC 7030 §4.1.3 and §4.2.3: the "Simple PKI Response" of RFC 5272 §4.1):
// a degenerate SignedData with certificates and no signers. cacerts builds it with pkijs once, at start; the
// per-request answer of (re)enrollment is the same fixed structure around one certificate, written directly.
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { derExplicit, derInteger, derOid, derSequence, derSet, tlv } from '@enrolld/core/ca/der.js';

const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const ID_DATA = '1.2.840.113549.1.7.1';

/** certs-only SignedData around DER certificates, built with pkijs (RFC 5652 §5.1: version 1, no signerInfos). */
export function certsOnlyWithPkijs(certificates: Buffer[]): Buffer {
  const signed = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: ID_DATA }),
    certificates: certificates.map((der) => pkijs.Certificate.fromBER(der)),
  });
  const info = new pkijs.ContentInfo({ contentType: ID_SIGNED_DATA, content: signed.toSchema(true) });
  return Buffer.from((info.toSchema() as asn1js.Sequence).toBER(false));
}

/** The same structure, written directly: ContentInfo { signedData, [0] SignedData { 1, {}, { data }, [0] certs, {} } }. */
export function certsOnly(certificates: Buffer[]): Buffer {
  const signedData = derSequence(
    derInteger(1),
    derSet(), // digestAlgorithms: none
    derSequence(derOid(ID_DATA)), // encapContentInfo without eContent
    tlv(0xa0, ...certificates), // certificates [0] IMPLICIT SET OF
    derSet(), // signerInfos: none
  );
  return derSequence(derOid(ID_SIGNED_DATA), derExplicit(0, signedData));
}

/**
 * RFC 8951 §3: the body is base64 (RFC 4648 §4). One line, no line breaks: strongSwan `pki --est` decodes the body with
 * chunk_from_base64(), which does not skip whitespace. (`openssl base64 -d` then needs `-A` for the long line.)
 */
export function base64Body(der: Buffer): string {
  return der.toString('base64');
}
