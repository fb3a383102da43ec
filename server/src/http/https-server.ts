import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';

export interface HttpsServerOptions {
  app: RequestListener;
  certPem: string;
  keyPem: string;
  /** CAs whose client certificates the server asks for (mTLS renewal); a client may still send none. */
  clientCaPem: string;
  host: string;
  port: number;
}

export interface RunningHttpsServer {
  server: https.Server;
  port: number;
  close(): Promise<void>;
}

export async function startHttpsServer(options: HttpsServerOptions): Promise<RunningHttpsServer> {
  const server = https.createServer(
    {
      cert: options.certPem,
      key: options.keyPem,
      ca: options.clientCaPem,
      // Optional at the TLS layer, required by the routes that need it (RFC 7030 §3.3.2 for re-enrollment).
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      noDelay: true,
    },
    options.app,
  );
  server.keepAliveTimeout = 5_000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
