// Reads the certificates out of a PKCS#7 / CMS certs-only SignedData (RFC 5652 §5.1; RFC 7030 §4.1.3),
// as EST returns from cacerts, simpleenroll and simplereenroll.
import { children, decodeOid, readNode, slice } from './der.js';

const SIGNED_DATA = '1.2.840.113549.1.7.2';

export function certificatesFromPkcs7(der: Uint8Array): Buffer[] {
  const contentInfo = readNode(der, 0);
  const [typeNode, explicit] = children(der, contentInfo);
  if (!typeNode || !explicit || decodeOid(der, typeNode) !== SIGNED_DATA) throw new Error('PKCS#7: not SignedData');
  const [signedData] = children(der, explicit);
  if (!signedData) throw new Error('PKCS#7: empty content');
  // version, digestAlgorithms, encapContentInfo, then certificates [0] IMPLICIT (constructed tag 0xa0)
  const certSet = children(der, signedData).find((n) => n.tag === 0xa0);
  if (!certSet) return [];
  return children(der, certSet)
    .filter((n) => n.tag === 0x30)
    .map((n) => slice(der, n));
}

/** EST bodies are base64 (RFC 8951); some servers add line breaks. */
export function decodeEstBody(body: string | Buffer): Buffer {
  const text = typeof body === 'string' ? body : body.toString('latin1');
  return Buffer.from(text.replace(/\s+/g, ''), 'base64');
}
