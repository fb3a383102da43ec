// The TLS client material of one device certificate, built once and shared by every connection that presents it: MQTT
// connects and reconnects, the old-certificate probe, and REST/EST renewals. A secure context parses the trust anchors,
// the chain and the key, and holds native OpenSSL memory that is freed only when V8 collects its wrapper; one per request
// made every rotation wave allocate (and keep until a full GC) one per renewal on top of the one per connection.
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { DeviceCredentials, IssuedCert } from './transport.js';

export type CredentialContexts = (creds: DeviceCredentials) => SecureContext;

/** Whether each CA certificate (PEM) is self-signed: the same few for every device, parsed once. */
const selfSigned = new Map<string, boolean>();

function isSelfSigned(pem: string): boolean {
  let known = selfSigned.get(pem);
  if (known === undefined) {
    const c = new X509Certificate(pem);
    known = c.subject === c.issuer;
    selfSigned.set(pem, known);
  }
  return known;
}

/** What a device presents over mTLS: the leaf, plus intermediates unless told to send the leaf alone. */
export function clientCertChain(creds: IssuedCert, sendChain: boolean): string {
  if (!sendChain) return creds.certificatePem;
  // a real device does not send the root it is anchored on
  return [creds.certificatePem, ...creds.chainPem.filter((pem) => !isSelfSigned(pem))].join('');
}

/** One secure context per certificate (kept while its credentials object lives: a WeakMap). */
export function createCredentialContexts(opts: { ca: string; sendChain: boolean }): CredentialContexts {
  const contexts = new WeakMap<DeviceCredentials, SecureContext>();
  return (creds) => {
    let ctx = contexts.get(creds);
    if (!ctx) {
      ctx = createSecureContext({
        ca: opts.ca,
        cert: clientCertChain(creds, opts.sendChain),
        key: creds.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        minVersion: 'TLSv1.2',
      });
      contexts.set(creds, ctx);
    }
    return ctx;
  };
}
