// Serial numbers are compared as unsigned hex without leading zeros: the store keeps the DER content octets
// (RFC 5280 §4.1.2.2: a positive INTEGER, so a high-bit serial carries a leading 00), while X.509 parsers
// print the number itself, in whatever case they like.
export function normalizeSerial(hex: string): string {
  const lower = hex.toLowerCase().replace(/[^0-9a-f]/g, '');
  const stripped = lower.replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}

export function isSerialHex(value: string): boolean {
  return /^[0-9a-fA-F]{1,42}$/.test(value);
}
