import https from 'node:https';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = any>(): T;
}

export interface RawRequest {
  method?: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  /** Client certificate for mTLS routes. */
  cert?: string;
  key?: string;
}

/** Exact control over method, headers and bytes, for tests of the HTTP contract. */
export function httpsRequest(url: string, caPem: string, request: RawRequest = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: request.method ?? 'GET', headers: framed(request), ca: caPem, cert: request.cert, key: request.key, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(request.body);
  });
}

/**
 * The request's headers with its body framed. Node's client frames a GET, DELETE or OPTIONS body with neither
 * Content-Length nor Transfer-Encoding, so the server reads those bytes as the start of the next request (RFC 9112 §6.3).
 */
function framed(request: RawRequest): Record<string, string | number> | undefined {
  const headers = request.headers;
  if (request.body === undefined) return headers;
  const names = Object.keys(headers ?? {}).map((name) => name.toLowerCase());
  if (names.includes('content-length') || names.includes('transfer-encoding')) return headers;
  return { ...headers, 'content-length': Buffer.byteLength(request.body) };
}

export function postJson(url: string, caPem: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return httpsRequest(url, caPem, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}
