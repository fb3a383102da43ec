// The one canonical form of a certificate serial number: lowercase hex of the DER INTEGER content octets, minimal
// (RFC 5280 §4.1.2.2: a positive INTEGER, so a serial whose top bit is set carries one leading 00 and no other
// leading zero octet is allowed). This form is chosen over "hex without leading zeros" because it is what the CA
// signs and what a CRL entry re-encodes byte for byte, so the stored string converts to and from the certificate
// without arithmetic. Every response carries this form; inputs in any other spelling (upper case, colons, extra or
// missing leading zeros, as X.509 tools print them) are canonicalised once, where they enter (HTTP path, CLI flag,
// a peer certificate parsed by a library), and compared as plain strings everywhere else.

/** At most 20 content octets (RFC 5280 §4.1.2.2). */
export const MAX_SERIAL_OCTETS = 20;

/** Hex digits with optional ':' separators, as X.509 tools print a serial. */
const SERIAL_INPUT = /^[0-9a-fA-F]+(?::[0-9a-fA-F]+)*$/;

/**
 * Any spelling of a serial → its canonical form, or undefined when it is not hex or not a positive serial of at
 * most 20 octets.
 */
export function canonicalSerial(input: string): string | undefined {
  if (!SERIAL_INPUT.test(input)) return undefined;
  const digits = input.replaceAll(':', '').toLowerCase().replace(/^0+/, '');
  if (digits === '') return undefined; // zero is not positive
  const even = digits.length % 2 === 1 ? `0${digits}` : digits;
  const canonical = /^[89a-f]/.test(even) ? `00${even}` : even;
  return canonical.length <= MAX_SERIAL_OCTETS * 2 ? canonical : undefined;
}

export function isCanonicalSerial(value: string): boolean {
  return canonicalSerial(value) === value;
}
