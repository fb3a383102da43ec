// The TLS client material of one device certificate, built once and shared by every connection that presents it: MQTT
// connects and reconnects, the old-certificate probe, and REST/EST renewals. A secure context parses the trust anchors,
// the chain and the key into an OpenSSL SSL_CTX of ~25-30 KiB of native memory, of which V8 is told 1 KiB: left to the
// garbage collector, the contexts of retired certificates pile up between major GCs (nothing in the JS heap asks for
// one) and every rotation wave raised the simulator's RSS. So a certificate that will not be presented again is
// released and its context closed at once; a connection made with it keeps its own reference (OpenSSL counts the
// SSL_CTX's users), so closing it under a live socket is safe.
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { DeviceCredentials, IssuedCert } from './transport.js';

export interface CredentialContexts {
  /** The context of a certificate, built on first use. */
  (creds: DeviceCredentials): SecureContext;
  /** The certificate will not be presented again: close its context now (a later use builds a new one). */
  release(creds: DeviceCredentials): void;
  /** Contexts built and not yet released. */
  held(): number;
}

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

/** SecureContext's native handle: `close()` frees the SSL_CTX reference it holds (what Node does for single-use contexts). */
interface ClosableContext {
  context?: { close?: () => void } | null;
}

/**
 * One secure context per certificate. Held in a WeakMap (a certificate dropped without release still frees its context
 * when collected), and closed on release.
 */
export function createCredentialContexts(opts: { ca: string; sendChain: boolean }): CredentialContexts {
  const contexts = new WeakMap<DeviceCredentials, SecureContext>();
  let held = 0;
  const get = (creds: DeviceCredentials): SecureContext => {
    let ctx = contexts.get(creds);
    if (!ctx) {
      ctx = createSecureContext({
        ca: opts.ca,
        cert: clientCertChain(creds, opts.sendChain),
        key: creds.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        minVersion: 'TLSv1.2',
      });
      contexts.set(creds, ctx);
      held++;
    }
    return ctx;
  };
  return Object.assign(get, {
    release(creds: DeviceCredentials): void {
      const ctx = contexts.get(creds) as (SecureContext & ClosableContext) | undefined;
      if (!ctx) return;
      contexts.delete(creds);
      held--;
      ctx.context?.close?.();
      ctx.context = null;
    },
    held: () => held,
  });
}
