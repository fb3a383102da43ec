// A PKCS#10 request (RFC 2986) for `enrolld service create`: subject CN=<name>, no attributes. The server writes
// the names, kind and profile from its record, so the request only has to carry the key and prove possession of it.
import { sign, type KeyObject } from 'node:crypto';

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}
const OID_CN = Buffer.from('0603550403', 'hex'); // 2.5.4.3
const ECDSA_WITH_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex'); // RFC 5758 §3.2

/** DER of a CSR for an EC key (P-256 or P-384, signed with ECDSA-SHA256). */
export function serviceCsr(name: string, publicKey: KeyObject, privateKey: KeyObject): Buffer {
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, OID_CN, tlv(0x0c, Buffer.from(name, 'utf8')))));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = tlv(0x30, Buffer.from([0x02, 0x01, 0x00]), subject, spki, Buffer.from([0xa0, 0x00]));
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  return tlv(0x30, info, ECDSA_WITH_SHA256, tlv(0x03, Buffer.from([0]), signature));
}
