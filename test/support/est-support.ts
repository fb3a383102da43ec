// EST test helpers: raw HTTP/1.1 over one TLS connection (so a CSR can carry that connection's channel binding,
// RFC 7030 §3.5), challengePassword attributes, and PKCS#7 certs-only parsing with pkijs (independent of the server's
// own DER writer).
import tls from 'node:tls';
import * as pkijs from 'pkijs';
import { derOid, derPrintableString, derSequence, derSet } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';

export interface TlsSession {
  socket: tls.TLSSocket;
  /** tls-unique (TLS 1.2) or tls-exporter (TLS 1.3), as the client computes it. */
  binding: Buffer;
  version: string;
}

export function openTls(url: string, caPem: string, options: { version: 'TLSv1.2' | 'TLSv1.3'; cert?: string; key?: string }): Promise<TlsSession> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: u.hostname,
      port: Number(u.port),
      servername: 'localhost',
      ca: caPem,
      minVersion: options.version,
      maxVersion: options.version,
      ...(options.cert ? { cert: options.cert, key: options.key } : {}),
    });
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      const version = socket.getProtocol() ?? '';
      // RFC 9266 §2 on TLS 1.3; RFC 5929 §3.1 on TLS 1.2: the client's Finished is the first one in a full handshake.
      const binding = version === 'TLSv1.3' ? socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)) : socket.getFinished()!;
      resolve({ socket, binding, version });
    });
  });
}

export interface RawHttpResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

/** One request on an open TLS socket (keep-alive), reading exactly Content-Length bytes of the answer. */
export function requestOnSocket(socket: tls.TLSSocket, method: string, path: string, headers: Record<string, string>, body = ''): Promise<RawHttpResponse> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0]!.split(' ')[1]);
      const h: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        h[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(h['content-length'] ?? NaN);
      if (Number.isNaN(length)) {
        cleanup();
        reject(new Error(`no Content-Length in reply: ${head.join(' | ')}`));
        return;
      }
      if (buffer.length < end + 4 + length) return;
      cleanup();
      const payload = buffer.subarray(end + 4, end + 4 + length);
      resolve({ status, headers: h, body: payload, text: payload.toString('utf8') });
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    const bytes = Buffer.from(body, 'latin1');
    const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost', `Content-Length: ${bytes.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (bytes.length > 0) socket.write(bytes);
  });
}

/** RFC 2985 §5.4.1 challengePassword holding base64 of a channel binding (RFC 7030 §3.5). */
export function challengePasswordAttribute(value: string): Buffer {
  return derSequence(derOid(OID.challengePassword), derSet(derPrintableString(value)));
}

/** DER certificates inside a PKCS#7 certs-only, read by pkijs. */
export function certificatesInPkcs7(der: Buffer): Buffer[] {
  const info = pkijs.ContentInfo.fromBER(der);
  if (info.contentType !== '1.2.840.113549.1.7.2') throw new Error(`not SignedData: ${info.contentType}`);
  const signed = new pkijs.SignedData({ schema: info.content });
  if ((signed.signerInfos ?? []).length !== 0) throw new Error('certs-only must have no signerInfos');
  return (signed.certificates ?? []).map((c) => Buffer.from((c as pkijs.Certificate).toSchema().toBER(false)));
}

/** EST bodies are base64 (RFC 8951), possibly in lines. */
export function decodeBase64Body(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'base64');
}
