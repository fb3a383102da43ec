// Linking identity and proof-of-possession (RFC 7030 §3.5): the client puts the TLS channel binding of the connection
// it sends the CSR on into the CSR's challengePassword, base64 encoded. The CSR signature covers it, so a CSR replayed
// on another TLS session, or relayed by a man in the middle, carries a binding that does not match.
//  - TLS 1.2: tls-unique (RFC 5929 §3), the first Finished message of the handshake.
//  - TLS 1.3: tls-unique is undefined (RFC 8446 §C.5); tls-exporter (RFC 9266 §2) is the 32-byte exporter with label
//    "EXPORTER-Channel-Binding" and no context.
// parseCsr does not expose attributes (it reads only the extensionRequest), so the challengePassword is read here from
// the CSR DER that parseCsr has already checked to be strict, bounded DER.
import { createHash, timingSafeEqual } from 'node:crypto';
import { EnrollError } from '../errors.js';
import { decodeOid, DerError, readChildren, readTlv, TAG_PRINTABLE_STRING, TAG_SEQUENCE, TAG_SET, TAG_UTF8_STRING } from '../ca/der.js';
import { OID } from '../ca/oids.js';

export type PopLinkingPolicy = 'off' | 'if-present' | 'required';

export interface ChannelBinding {
  type: 'tls-unique' | 'tls-exporter';
  value: Buffer;
}

/** RFC 2985 §5.4.1: challengePassword is a DirectoryString; PrintableString and UTF8String are what clients send. */
export function csrChallengePassword(csrDer: Buffer): string | undefined {
  try {
    return readChallengePassword(csrDer);
  } catch (error) {
    if (error instanceof DerError) throw new EnrollError('bad-csr', `malformed CSR: ${error.message}`, { cause: error });
    throw error;
  }
}

function readChallengePassword(csrDer: Buffer): string | undefined {
  const outer = readTlv(csrDer, 0, csrDer.length);
  const [cri] = readChildren(csrDer, outer, 3);
  if (!cri) return undefined;
  const attributes = readChildren(csrDer, cri, 5)[3];
  if (!attributes || attributes.tag !== 0xa0) return undefined;
  let found: string | undefined;
  for (const attribute of readChildren(csrDer, attributes, 32)) {
    if (attribute.tag !== TAG_SEQUENCE) continue;
    const [type, values] = readChildren(csrDer, attribute, 3);
    if (!type || !values || values.tag !== TAG_SET) continue;
    if (decodeOid(csrDer, type.valueStart, type.end) !== OID.challengePassword) continue;
    const list = readChildren(csrDer, values, 2);
    const value = list[0];
    // RFC 2985 §5.4.1: single-valued.
    if (found !== undefined || list.length !== 1 || !value) throw new EnrollError('bad-csr', 'challengePassword must appear once with one value (RFC 2985 §5.4.1)');
    if (value.tag !== TAG_PRINTABLE_STRING && value.tag !== TAG_UTF8_STRING) {
      throw new EnrollError('bad-csr', 'challengePassword must be a PrintableString or UTF8String');
    }
    found = csrDer.toString('utf8', value.valueStart, value.end);
  }
  return found;
}

/** Compares fixed-length digests, so the comparison time does not depend on where the strings differ. */
function sameText(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/**
 * Applies the linking policy. `binding` is the channel binding of the TLS connection the CSR arrived on (undefined
 * when the transport cannot provide one). Never logs or echoes the challengePassword.
 */
export function checkPopLinking(policy: PopLinkingPolicy, csrDer: Buffer, binding: ChannelBinding | undefined): void {
  if (policy === 'off') return;
  const password = csrChallengePassword(csrDer);
  if (password === undefined) {
    if (policy === 'required') {
      throw new EnrollError('bad-csr', 'this server requires proof-of-possession linking: put the base64 TLS channel binding (tls-unique on TLS 1.2, tls-exporter on TLS 1.3) in the CSR challengePassword (RFC 7030 §3.5)', {
        extensions: { popLinking: 'required', channelBinding: binding?.type ?? null },
      });
    }
    return;
  }
  if (!binding) {
    throw new EnrollError('bad-request', 'the CSR carries a challengePassword, but this connection has no TLS channel binding to check it against (RFC 7030 §3.5)');
  }
  // RFC 7030 §3.5: "the tls-unique value is base64 encoded"; whitespace is tolerated.
  if (!sameText(password.replace(/\s+/g, ''), binding.value.toString('base64'))) {
    throw new EnrollError('forbidden', `the CSR challengePassword does not match this TLS connection's ${binding.type} channel binding (RFC 7030 §3.5): send the CSR on the connection whose binding it carries`, {
      extensions: { popLinking: policy, channelBinding: binding.type },
    });
  }
}
