// The mutual-TLS listener in front of aedes: the secure context (our chain only, session tickets off unless
// configured) and the set of open sockets so stop() can end them.
// No CRL is in the context: revocation is enforced at CONNECT by the admission registry (admission.ts), which every
// path reaches, a resumed TLS session included; a CRL here cost every handshake (docs/architecture.md §7).
// A client certificate that fails verification is destroyed right after the handshake, except for one outside its
// validity period that our issuing CA did sign: that one reaches CONNECT, which answers CONNACK 5 `expired` instead
// of a bare close the device cannot tell from a network fault.
import { X509Certificate, constants as cryptoConstants } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { BrokerMetrics } from './broker-metrics.js';

export interface BrokerTls {
  /** Server key and certificate chain (PEM). */
  key: string | Buffer;
  cert: string | Buffer;
  /** Our chain only (issuing CA and root, PEM); never the system roots. */
  ca: string | Buffer;
  /** The issuing CA certificate (PEM or DER): device certificates must be issued by exactly this CA. */
  issuingCertificate: string | Buffer;
}

export interface TlsListenerOptions {
  host: string;
  port: number;
  /** TLS resumption; see BrokerConfig.sessionTickets. */
  sessionTickets: boolean;
  /** 48 bytes. */
  ticketKeys: Buffer;
}

export interface TlsListener {
  /** Listens and hands each accepted socket to `handle`; resolves with the port bound. */
  listen(handle: (socket: tls.TLSSocket) => void): Promise<number>;
  /** Stops accepting; resolves once every connection is gone (see destroySockets). */
  stopListening(): Promise<void>;
  /** Ends the connections still open (after aedes closed its clients). */
  destroySockets(): void;
  port(): number;
}

/** OpenSSL verification results that only say the time is outside the validity period (RFC 5280 §4.1.2.5). */
export const VALIDITY_ERRORS: ReadonlySet<string> = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export function createTlsListener(material: BrokerTls, options: TlsListenerOptions, deps: { log: Logger; metrics: BrokerMetrics }): TlsListener {
  const { log, metrics } = deps;
  const sockets = new Set<Socket>();
  const issuing = new X509Certificate(material.issuingCertificate);
  let server: tls.Server | undefined;

  /**
   * A certificate that failed only on time: let through when our issuing CA signed it. OpenSSL reports one error
   * (the last), so a foreign certificate that is also expired could carry CERT_HAS_EXPIRED: the signature decides.
   */
  function signedByIssuingCa(socket: tls.TLSSocket): boolean {
    const peer = socket.getPeerX509Certificate();
    return peer !== undefined && peer.checkIssued(issuing) && peer.verify(issuing.publicKey);
  }

  function accept(socket: tls.TLSSocket): boolean {
    if (socket.authorized) return true;
    const error = String(socket.authorizationError ?? 'no client certificate');
    if (VALIDITY_ERRORS.has(error) && signedByIssuingCa(socket)) return true;
    metrics.refused('tls-handshake');
    log.debug({ err: error, peer: socket.remoteAddress }, 'TLS client certificate refused');
    return false;
  }

  return {
    async listen(handle) {
      const srv = tls.createServer(
        {
          key: material.key,
          cert: material.cert,
          ca: material.ca,
          minVersion: 'TLSv1.2',
          // SSL_OP_NO_TICKET: no NewSessionTicket records, so no resumption and no 16 KiB per idle connection.
          secureOptions: options.sessionTickets ? 0 : cryptoConstants.SSL_OP_NO_TICKET,
          ...(options.sessionTickets ? { ticketKeys: options.ticketKeys } : {}),
          requestCert: true,
          // Verification still runs and sets socket.authorized; `accept` enforces it after the handshake.
          rejectUnauthorized: false,
          // Without it each CONNACK waits ~40 ms for a delayed ACK (Nagle's algorithm, RFC 896).
          noDelay: true,
        },
        (socket) => {
          if (accept(socket)) handle(socket);
          else socket.destroy();
        },
      );
      server = srv;
      srv.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      srv.on('tlsClientError', (error: Error & { code?: string }) => {
        metrics.refused('tls-handshake');
        log.debug({ err: error.code ?? error.message }, 'TLS handshake refused');
      });
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(options.port, options.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      return (srv.address() as AddressInfo).port;
    },

    stopListening() {
      const srv = server;
      server = undefined;
      return srv ? new Promise<void>((resolve) => srv.close(() => resolve())) : Promise.resolve();
    },

    destroySockets() {
      for (const socket of sockets) socket.destroy();
    },

    port() {
      const address = server?.address();
      return address && typeof address === 'object' ? address.port : 0;
    },
  };
}
