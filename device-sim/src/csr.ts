// PKCS#10 (RFC 2986) certification request for a device key, signed with node:crypto.
// Subject CN = id and SAN URI urn:enrolld:<kind>:<id> (docs/architecture.md): what a real device or service asks for.
// The server takes the identity from its own records; the CSR only has to agree with it.
import { sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { identityUri, type IdentityKind } from '@enrolld/protocol';
import { bitString, contextTag, ia5String, integer, octetString, oid, sequence, setOf, utf8String } from './der.js';
import { toPem } from './pem.js';

const OID = {
  commonName: '2.5.4.3',
  extensionRequest: '1.2.840.113549.1.9.14', // PKCS#9
  subjectAltName: '2.5.29.17',
  ecdsaWithSha256: '1.2.840.10045.4.3.2', // RFC 5758 §3.2: parameters absent
} as const;

export interface Csr {
  der: Buffer;
  pem: string;
}

export function buildCsr(deviceId: string, publicKey: KeyObject, privateKey: KeyObject, kind: IdentityKind = 'device'): Csr {
  const subject = sequence(setOf(sequence(oid(OID.commonName), utf8String(deviceId))));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String (RFC 5280 §4.2.1.6)
  const uriName = Buffer.from(ia5String(identityUri(kind, deviceId)));
  uriName[0] = 0x86;
  const san = sequence(oid(OID.subjectAltName), octetString(sequence(uriName)));
  const attributes = contextTag(0, sequence(oid(OID.extensionRequest), setOf(sequence(san))));
  const info = sequence(integer(0), subject, spki, attributes);
  const signature = sign('sha256', info, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(info, sequence(oid(OID.ecdsaWithSha256)), bitString(signature));
  return { der, pem: toPem('CERTIFICATE REQUEST', der) };
}
