// Turns what the server sent (REST JSON or EST PKCS#7) into IssuedCert, checking that the leaf is for our key.
import { X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { canonicalSerial, enrollResponseSchema } from '@enrolld/protocol';
import { certificatesFromPkcs7, decodeEstBody } from './pkcs7.js';
import { splitPem, toPem } from './pem.js';
import { SimError } from './sim-error.js';
import type { IssuedCert } from './transport.js';

/** Every device of a CA gets the same chain: one array of it, not one per certificate held (bounded: a few CAs). */
const chains = new Map<string, string[]>();
function sharedChain(chainPem: string[]): string[] {
  const key = chainPem.join('');
  let shared = chains.get(key);
  if (!shared) {
    shared = chainPem;
    if (chains.size < 64) chains.set(key, shared);
  }
  return shared;
}

function fromLeaf(leaf: X509Certificate, chainPem: string[], deviceId: string, privateKey: KeyObject): IssuedCert {
  if (!leaf.checkPrivateKey(privateKey)) throw new SimError('bad-response-key-mismatch', 'issued certificate is not for our key', { retryable: false });
  // node prints the serial its own way: the same canonical form as the server's, so reports and hints compare equal.
  const serial = canonicalSerial(leaf.serialNumber);
  if (serial === undefined) throw new SimError('bad-response-serial', `issued certificate has no valid serial (${leaf.serialNumber})`, { retryable: false });
  return {
    deviceId,
    serial,
    certificatePem: leaf.toString(),
    chainPem: sharedChain(chainPem),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}

/** The REST answer of enroll and renew (and of MQTT …/renew/accepted): `enrollResponseSchema` of @enrolld/protocol. */
export function issuedFromRest(body: unknown, privateKey: KeyObject): IssuedCert {
  const parsed = enrollResponseSchema.safeParse(body);
  if (!parsed.success) throw new SimError('bad-response-shape', `enroll response does not match the contract: ${parsed.error.message}`);
  const leafPem = splitPem(parsed.data.certificate)[0];
  if (!leafPem) throw new SimError('bad-response-no-cert', 'enroll response has no certificate');
  const leaf = new X509Certificate(leafPem);
  const chain = splitPem(parsed.data.chain).filter((p) => p !== leafPem);
  const issued = fromLeaf(leaf, chain, parsed.data.deviceId, privateKey);
  // the server's renewal window (renewal.ts honours it); an unreadable one is left out, not an error
  const renewAfter = Date.parse(parsed.data.renewAfter);
  return Number.isFinite(renewAfter) ? { ...issued, renewAfter } : issued;
}

/** EST certs-only PKCS#7 (RFC 7030 §4.2.3): an unordered SET, so the leaf is the one matching our key. */
export function issuedFromEst(body: string | Buffer, deviceId: string, privateKey: KeyObject): IssuedCert {
  let certs: X509Certificate[];
  try {
    certs = certificatesFromPkcs7(decodeEstBody(body)).map((der) => new X509Certificate(der));
  } catch (err) {
    throw new SimError('bad-response-pkcs7', `EST reply is not a certs-only PKCS#7: ${(err as Error).message}`);
  }
  const leaf = certs.find((c) => c.checkPrivateKey(privateKey));
  if (!leaf) throw new SimError('bad-response-key-mismatch', 'EST reply holds no certificate for our key', { retryable: false });
  const chain = certs.filter((c) => c !== leaf).map((c) => toPem('CERTIFICATE', c.raw));
  return fromLeaf(leaf, chain, deviceId, privateKey);
}

/** What a device presents over mTLS (tls-credentials.ts, which parses each CA certificate once). */
export { clientCertChain } from './tls-credentials.js';
