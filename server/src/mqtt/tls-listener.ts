// The mutual-TLS listener in front of aedes: the secure context (our chain only, the issuing CA's CRL, session tickets
// off unless configured), its swap when a newer CRL arrives, and the set of open sockets so stop() can end them.
// Revocation at the handshake is this CRL; the CONNECT-time check (admission.ts) covers what it cannot: a resumed TLS
// session skips the client-certificate check, and Node accepts it.
import { constants as cryptoConstants } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { StoredCrl } from '@enrolld/core/revocation/ports.js';
import type { BrokerMetrics } from './broker-metrics.js';

export interface BrokerTls {
  /** Server key and certificate chain (PEM). */
  key: string | Buffer;
  cert: string | Buffer;
  /** Our chain only (issuing CA and root, PEM); never the system roots. */
  ca: string | Buffer;
  /** The issuing CA certificate (PEM or DER): device certificates must be issued by exactly this CA. */
  issuingCertificate: string | Buffer;
  /**
   * CRLs besides the issuing CA's own, PEM or DER: the root's CRL over the issuing CA. Node turns on
   * X509_V_FLAG_CRL_CHECK_ALL as soon as any CRL is set, so every CA in the chain needs one, or every handshake fails.
   */
  extraCrls?: Array<string | Buffer> | undefined;
}

export interface TlsListenerOptions {
  host: string;
  port: number;
  /** TLS resumption; see BrokerConfig.sessionTickets. */
  sessionTickets: boolean;
  /** 48 bytes, kept across CRL swaps so a swap does not end resumption. */
  ticketKeys: Buffer;
}

export interface TlsListener {
  /** Uses this CRL for new handshakes when it is newer than the one in use. */
  applyCrl(crl: StoredCrl): void;
  /** Listens and hands each verified socket to `handle`; resolves with the port bound. */
  listen(handle: (socket: tls.TLSSocket) => void): Promise<number>;
  /** Stops accepting; resolves once every connection is gone (see destroySockets). */
  stopListening(): Promise<void>;
  /** Ends the connections still open (after aedes closed its clients). */
  destroySockets(): void;
  port(): number;
}

function pemCrl(crl: string | Buffer): string {
  if (typeof crl === 'string') return crl;
  const text = crl.toString('latin1');
  if (text.startsWith('-----BEGIN')) return text;
  const b64 = crl.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN X509 CRL-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END X509 CRL-----\n`;
}

export function createTlsListener(material: BrokerTls, options: TlsListenerOptions, deps: { log: Logger; metrics: BrokerMetrics }): TlsListener {
  const { log, metrics } = deps;
  const sockets = new Set<Socket>();
  let server: tls.Server | undefined;
  let issuingCrl: StoredCrl | undefined;

  function secureOptions(): tls.SecureContextOptions & tls.TlsOptions {
    const crls = issuingCrl ? [pemCrl(issuingCrl.der), ...(material.extraCrls ?? []).map(pemCrl)] : undefined;
    return {
      key: material.key,
      cert: material.cert,
      ca: material.ca,
      ...(crls ? { crl: crls } : {}),
      minVersion: 'TLSv1.2',
      // SSL_OP_NO_TICKET: no NewSessionTicket records, so no resumption and no 16 KiB per idle connection.
      secureOptions: options.sessionTickets ? 0 : cryptoConstants.SSL_OP_NO_TICKET,
      ...(options.sessionTickets ? { ticketKeys: options.ticketKeys } : {}),
    };
  }

  return {
    applyCrl(crl) {
      if (issuingCrl && crl.crlNumber <= issuingCrl.crlNumber) return;
      issuingCrl = crl;
      // New handshakes only; live connections are cut separately (Node docs: existing connections are not interrupted).
      server?.setSecureContext(secureOptions());
      log.info({ crlNumber: crl.crlNumber.toString(), nextUpdate: crl.nextUpdate.toISOString() }, 'CRL loaded into the TLS context');
    },

    async listen(handle) {
      if (!material.extraCrls?.length) {
        log.warn({}, 'no CRL for the issuing CA itself (root ARL): Node checks CRLs for every CA in the chain once one is set');
      }
      const srv = tls.createServer(
        {
          ...secureOptions(),
          requestCert: true,
          rejectUnauthorized: true,
          // Without it each CONNACK waits ~40 ms for a delayed ACK (Nagle's algorithm, RFC 896).
          noDelay: true,
        },
        handle,
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
