import { derEnumerated, derExplicit, derInteger, derSequence, derTime, TAG_INTEGER, tlv } from './der.js';
import type { IssuerFacts } from './issuer.js';
import { OID } from './oids.js';
import { serialFromHex } from './serial.js';
import type { CrlSpec } from './types.js';
import { authorityKeyIdentifierExtension, ECDSA_SHA256, extension, internalError, wholeSeconds } from './x509-encoding.js';

// TBSCertList encoding (RFC 5280 §5.1). This module encodes; it holds no key (signer.ts signs).

export function encodeCrlTbs(spec: CrlSpec, issuer: IssuerFacts): Buffer {
  if (!(spec.thisUpdate.getTime() <= spec.nextUpdate.getTime())) throw internalError('CRL nextUpdate before thisUpdate');
  if (spec.crlNumber < 0n || spec.crlNumber >= 1n << 159n) throw internalError('CRL number must be 0 … 2^159 − 1 (RFC 5280 §5.2.3)');
  const seen = new Set<string>();
  const entries = spec.entries.map((entry) => {
    let serial: Buffer;
    try {
      serial = serialFromHex(entry.serial.toLowerCase());
    } catch (cause) {
      throw internalError(`CRL entry serial ${JSON.stringify(entry.serial.slice(0, 48))} is not a valid serial`, cause);
    }
    const hex = serial.toString('hex');
    if (seen.has(hex)) throw internalError(`CRL entry ${hex} listed twice`);
    seen.add(hex);
    if (!Number.isInteger(entry.reasonCode) || entry.reasonCode < 0 || entry.reasonCode > 10 || entry.reasonCode === 7) {
      throw internalError(`CRL entry ${hex}: invalid CRLReason ${entry.reasonCode} (RFC 5280 §5.3.1)`);
    }
    const parts: Buffer[] = [tlv(TAG_INTEGER, serial), derTime(wholeSeconds(entry.revokedAt))];
    // RFC 5280 §5.3.1: reasonCode unspecified (0) SHOULD be absent rather than present.
    if (entry.reasonCode !== 0) {
      parts.push(derSequence(extension(OID.crlReason, false, derEnumerated(entry.reasonCode))));
    }
    return derSequence(...parts);
  });
  const tbsParts: Buffer[] = [
    derInteger(1), // v2 (RFC 5280 §5.1.2.1): required because extensions are present
    ECDSA_SHA256,
    issuer.name,
    derTime(wholeSeconds(spec.thisUpdate)),
    derTime(wholeSeconds(spec.nextUpdate)),
  ];
  // RFC 5280 §5.1.2.6: when there are no revoked certificates, the list MUST be absent.
  if (entries.length > 0) tbsParts.push(derSequence(...entries));
  tbsParts.push(
    derExplicit(
      0,
      derSequence(
        authorityKeyIdentifierExtension(issuer.keyIdentifier), // RFC 5280 §5.2.1: conforming CRL issuers MUST include AKI
        extension(OID.crlNumber, false, derInteger(spec.crlNumber)), // RFC 5280 §5.2.3: MUST include
      ),
    ),
  );
  return derSequence(...tbsParts);
}
