import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { RequestListener } from 'node:http';
import { problemDocument } from '@enrolld/protocol';

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
  server.on('clientError', answerClientError);
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

/**
 * Node's own answer to bytes its HTTP parser cannot read (before express sees a request), with the status Node would
 * use; a 400 carries a problem document like every other client fault (RFC 9457). Example: a request body sent
 * without Content-Length or Transfer-Encoding is read as the start of the next request, which is not HTTP.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  // Node's rule: answer unless a response on this connection has already sent its headers (the socket's attached
  // ServerResponse is the undocumented `_httpMessage` Node's default handler reads too).
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    socket.write(clientErrorResponse(error.code));
  }
  socket.destroy(error);
}

function clientErrorResponse(code: string | undefined): string {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n';
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 'HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n';
    default: {
      const requestId = randomUUID();
      const body = JSON.stringify(problemDocument('bad-request', 'the request is not valid HTTP/1.1 (RFC 9112)', { requestId }));
      return `HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`;
    }
  }
}
