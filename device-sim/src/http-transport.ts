// Enrollment and renewal over HTTPS: REST (docs/architecture.md) and EST (RFC 7030, base64 bodies per RFC 8951).
import { Agent } from 'node:https';
import type { KeyObject } from 'node:crypto';
import { routes } from '@enrolld/protocol';
import type { Csr } from './csr.js';
import { httpsCall, jsonOf, problemOf } from './https-request.js';
import type { HttpResponse } from './https-request.js';
import { issuedFromEst, issuedFromRest } from './issued-cert.js';
import { createCredentialContexts, type CredentialContexts } from './tls-credentials.js';
import { httpError, parseRetryAfter } from './sim-error.js';
import type { DeviceCredentials, EnrollVia, IssuedCert } from './transport.js';

export interface HttpTransportOptions {
  apiUrl: URL;
  /** trust anchor(s) the device ships with (PEM) */
  ca: string;
  /** present leaf + intermediates over mTLS (what a real device does) */
  sendChain: boolean;
  /** enrollment requests in flight share keep-alive connections */
  maxSockets: number;
  timeoutMs: number;
  /** the secure context of each certificate, shared with the MQTT transport; one of its own when absent */
  contexts?: CredentialContexts;
}

export interface HttpTransport {
  enroll(via: EnrollVia, deviceId: string, token: string, csr: Csr, privateKey: KeyObject): Promise<IssuedCert>;
  renew(via: 'rest' | 'est', creds: DeviceCredentials, csr: Csr, newKey: KeyObject): Promise<IssuedCert>;
  close(): void;
}

function servername(url: URL): string | undefined {
  // SNI must not be an IP address (RFC 6066 §3)
  return /^[\d.]+$|:/.test(url.hostname) ? undefined : url.hostname;
}

export function createHttpTransport(opts: HttpTransportOptions): HttpTransport {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.maxSockets, ca: opts.ca });
  const url = (path: string): URL => new URL(path, opts.apiUrl);
  const sni = servername(opts.apiUrl);
  const contexts = opts.contexts ?? createCredentialContexts(opts);

  const ok = (res: HttpResponse, what: string, expected: number[]): HttpResponse => {
    if (!expected.includes(res.status)) {
      const retryAfter = res.headers['retry-after'];
      throw httpError(res.status, problemOf(res), what, parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, Date.now()));
    }
    return res;
  };

  return {
    async enroll(via, deviceId, token, csr, privateKey) {
      if (via === 'rest') {
        const res = await httpsCall({
          what: 'enroll',
          method: 'POST',
          url: url(routes.enroll),
          agent,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ token, csr: csr.pem }),
          timeoutMs: opts.timeoutMs,
        });
        return issuedFromRest(jsonOf(ok(res, 'enroll', [200, 201]), 'enroll'), privateKey);
      }
      // RFC 7030 §3.2.3 / §4.2.1: HTTP Basic user = device id, password = bootstrap token
      const res = await httpsCall({
        what: 'enroll-est',
        method: 'POST',
        url: url(routes.est.simpleenroll),
        agent,
        headers: {
          'content-type': 'application/pkcs10',
          'content-transfer-encoding': 'base64',
          accept: 'application/pkcs7-mime',
          authorization: `Basic ${Buffer.from(`${deviceId}:${token}`).toString('base64')}`,
        },
        body: csr.der.toString('base64'),
        timeoutMs: opts.timeoutMs,
      });
      return issuedFromEst(ok(res, 'enroll-est', [200]).body, deviceId, privateKey);
    },

    async renew(via, creds, csr, newKey) {
      // Authenticated by the current cert over mTLS (RFC 7030 §3.3.2): a fresh connection, no shared agent, with the
      // certificate's own secure context (the one its MQTT connections use)
      const tls = { secureContext: contexts(creds), ...(sni ? { servername: sni } : {}) };
      if (via === 'rest') {
        const res = await httpsCall({
          what: 'renew',
          method: 'POST',
          url: url(routes.renew),
          tls,
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ csr: csr.pem }),
          timeoutMs: opts.timeoutMs,
        });
        return issuedFromRest(jsonOf(ok(res, 'renew', [200, 201]), 'renew'), newKey);
      }
      const res = await httpsCall({
        what: 'renew-est',
        method: 'POST',
        url: url(routes.est.simplereenroll),
        tls,
        headers: { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64', accept: 'application/pkcs7-mime' },
        body: csr.der.toString('base64'),
        timeoutMs: opts.timeoutMs,
      });
      return issuedFromEst(ok(res, 'renew-est', [200]).body, creds.deviceId, newKey);
    },

    close() {
      agent.destroy();
    },
  };
}
