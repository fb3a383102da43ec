// The mutual-TLS listener in front of aedes: the secure context (our chain only, session tickets off unless
// configured) and the set of open sockets so stop() can end them.
// No CRL is in the context: revocation is enforced at CONNECT by the admission registry (admission.ts), which every
// path reaches, a resumed TLS session included; a CRL here cost every handshake (docs/architecture.md §7).
// A client certificate that fails verification is destroyed right after the handshake, except for one outside its
// validity period that our issuing CA did sign: that one reaches CONNECT, which answers CONNACK 5 `expired` instead
// of a bare close the device cannot tell from a network fault.
// The broker serves one environment and trusts only its issuing CA: a certificate that verifies to the root but was
// issued by another environment's issuing CA under it (sent with its intermediate, or not) is destroyed at the same
// point. Node 20's tls.createServer does not pass `allowPartialTrustChain` on to its secure context (only
// tls.createSecureContext takes it), so the context keeps the whole chain and the issuer is pinned here, by the name
// and key id the verified certificate carries (peer-identity.ts).
// Sockets that are not yet admitted at CONNECT are bounded: a TLS handshake that does not finish within the handshake
// timeout is destroyed (Node only reports it), and accepted sockets still waiting for their admission are capped per
// source address and in total, so half-open connections cannot take the file descriptors real devices need. Once TLS
// is up, aedes' connect timeout bounds the wait for CONNECT.
import { X509Certificate, constants as cryptoConstants } from 'node:crypto';
import { Socket, type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { BrokerMetrics } from './broker-metrics.js';
import type { PeerIdentityReader } from './peer-identity.js';

export interface BrokerTls {
  /** Server key and certificate chain (PEM). */
  key: string | Buffer;
  cert: string | Buffer;
  /** Our chain only (issuing CA and root, PEM); never the system roots. */
  ca: string | Buffer;
  /** The issuing CA certificate (PEM or DER) of the broker's environment: device certificates must be issued by exactly this CA. */
  issuingCertificate: string | Buffer;
}

export interface TlsListenerOptions {
  host: string;
  port: number;
  /** TLS resumption; see BrokerConfig.sessionTickets. */
  sessionTickets: boolean;
  /** 48 bytes. */
  ticketKeys: Buffer;
  /** A TLS handshake not finished within this is destroyed. */
  handshakeTimeoutMs: number;
  /** Accepted sockets not yet admitted at CONNECT, per source address and in all; over either, a new one is closed at once. */
  maxPendingPerAddress: number;
  maxPending: number;
}

export interface TlsListener {
  /** Listens and hands each accepted socket to `handle`; resolves with the port bound. */
  listen(handle: (socket: tls.TLSSocket) => void): Promise<number>;
  /** Stops accepting; resolves once every connection is gone (see destroySockets). */
  stopListening(): Promise<void>;
  /** Ends the connections still open (after aedes closed its clients). */
  destroySockets(): void;
  port(): number;
  /** The socket's device was admitted at CONNECT: it no longer counts as pending. */
  admitted(socket: Socket): void;
  /** Accepted sockets not yet admitted. */
  pendingCount(): number;
}

/**
 * Lets a chain end at any certificate of the trust store, not only at the self-signed root (OpenSSL's
 * X509_V_FLAG_PARTIAL_CHAIN, what `allowPartialTrustChain` sets). The store holds the environment's issuing CA and its
 * root, and OpenSSL looks in the store first: a device's chain stops at the issuing CA there, so a handshake checks one
 * certificate signature (the leaf's) instead of two (the leaf's and, again, the issuing CA's by the root). A certificate
 * of another issuing CA under the same root still verifies to the root and is refused by the issuer pin. Node 20's
 * tls.createServer does not pass `allowPartialTrustChain` on, so the flag is set on the server's own context.
 */
function trustIssuingCaAsAnchor(server: tls.Server): void {
  const context = (server as unknown as { _sharedCreds?: { context?: { setAllowPartialTrustChain?: () => void } } })._sharedCreds?.context;
  if (typeof context?.setAllowPartialTrustChain !== 'function') throw new Error('this Node.js has no partial trust chains on a TLS server context');
  context.setAllowPartialTrustChain();
}

/** OpenSSL verification results that only say the time is outside the validity period (RFC 5280 §4.1.2.5). */
export const VALIDITY_ERRORS: ReadonlySet<string> = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * `identities` reads each verified peer's certificate once, pinned to the issuing CA: the listener refuses another
 * issuer's, and CONNECT finds the same identity without reading the certificate again.
 */
export function createTlsListener(material: BrokerTls, options: TlsListenerOptions, deps: { log: Logger; metrics: BrokerMetrics; identities: PeerIdentityReader }): TlsListener {
  const { log, metrics, identities } = deps;
  const sockets = new Set<Socket>();
  /** Pending sockets by "address port" (the same on the raw socket and on its TLS socket), and counts per address. */
  const pending = new Map<string, string>();
  const pendingPerAddress = new Map<string, number>();
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
    if (socket.authorized) {
      const read = identities.read(socket);
      if (read.ok || read.otherIssuer !== true) return true;
      metrics.refused('other-issuer');
      log.info({ peer: socket.remoteAddress }, 'TLS client certificate of another issuing CA (another environment) refused');
      return false;
    }
    const error = String(socket.authorizationError ?? 'no client certificate');
    if (VALIDITY_ERRORS.has(error) && signedByIssuingCa(socket)) return true;
    metrics.refused('tls-handshake');
    log.debug({ err: error, peer: socket.remoteAddress }, 'TLS client certificate refused');
    return false;
  }

  const connectionKey = (socket: Socket) => `${socket.remoteAddress ?? ''} ${socket.remotePort ?? ''}`;

  function release(key: string): void {
    const address = pending.get(key);
    if (address === undefined) return;
    pending.delete(key);
    const left = (pendingPerAddress.get(address) ?? 1) - 1;
    if (left > 0) pendingPerAddress.set(address, left);
    else pendingPerAddress.delete(address);
  }

  /** Counts an accepted socket as pending; false when a cap is reached (the caller closes it). */
  function admitPending(socket: Socket): boolean {
    const address = socket.remoteAddress ?? '';
    if (pending.size >= options.maxPending) {
      metrics.refused('pending-total');
      return false;
    }
    const count = pendingPerAddress.get(address) ?? 0;
    if (count >= options.maxPendingPerAddress) {
      metrics.refused('pending-per-address');
      return false;
    }
    const key = connectionKey(socket);
    pending.set(key, address);
    pendingPerAddress.set(address, count + 1);
    socket.once('close', () => release(key));
    return true;
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
          handshakeTimeout: options.handshakeTimeoutMs,
        },
        (socket) => {
          if (accept(socket)) handle(socket);
          else socket.destroy();
        },
      );
      trustIssuingCaAsAnchor(srv);
      server = srv;
      srv.on('connection', (socket: Socket) => {
        if (!admitPending(socket)) {
          socket.destroy();
          return;
        }
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      // Node emits the handshake timeout and other handshake failures here and leaves the socket open: close it.
      srv.on('tlsClientError', (error: Error & { code?: string }, socket: tls.TLSSocket) => {
        // A socket already gone was closed by its peer, or by the caps above (counted there).
        const refusedHere = !socket.destroyed;
        socket.destroy();
        if (error.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
          metrics.refused('handshake-timeout');
          log.debug({ peer: socket.remoteAddress }, 'TLS handshake timed out');
          return;
        }
        if (!refusedHere) return;
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

    admitted(socket) {
      // Node keeps the TCP socket under a server-side TLS socket as `_parent`, whose peer address admitPending already
      // read: one getpeername less per CONNECT. Without it (another Node), the TLS socket's own address gives the same key.
      const raw = (socket as { _parent?: unknown })._parent;
      release(connectionKey(raw instanceof Socket ? raw : socket));
    },

    pendingCount() {
      return pending.size;
    },

    port() {
      const address = server?.address();
      return address && typeof address === 'object' ? address.port : 0;
    },
  };
}
