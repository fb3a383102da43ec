// A small promise wrapper over node:https: one place for timeouts, body limits and problem+json parsing.
import { request as httpsRequest } from 'node:https';
import type { Agent, RequestOptions } from 'node:https';
import type { SecureContext } from 'node:tls';
import { problemSchema, type Problem } from '@enrolld/protocol';
import { SimError } from './sim-error.js';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HttpCall {
  method: 'GET' | 'POST';
  url: URL;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** a keep-alive agent, or false with TLS options for a one-off mTLS connection */
  agent?: Agent | false;
  tls?: Pick<RequestOptions, 'ca' | 'cert' | 'key' | 'servername'> & { secureContext?: SecureContext };
  timeoutMs?: number;
  what: string;
}

const MAX_BODY = 4 * 1024 * 1024;

export function httpsCall(call: HttpCall): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...call.headers };
    if (call.body !== undefined) headers['content-length'] = Buffer.byteLength(call.body);
    const req = httpsRequest(
      call.url,
      { method: call.method, headers, agent: call.agent ?? false, ...call.tls, timeout: call.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY) req.destroy(new SimError(`${call.what}-response-too-large`, 'response body over 4 MiB'));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new SimError(`${call.what}-timeout`, `no answer in ${call.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    if (call.body !== undefined) req.write(call.body);
    req.end();
  });
}

export function problemOf(res: HttpResponse): Problem | undefined {
  const type = String(res.headers['content-type'] ?? '');
  if (!type.includes('json')) return undefined;
  try {
    const parsed = problemSchema.safeParse(JSON.parse(res.body.toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function jsonOf(res: HttpResponse, what: string): unknown {
  try {
    return JSON.parse(res.body.toString('utf8')) as unknown;
  } catch {
    throw new SimError(`${what}-bad-json`, `${what}: response is not JSON`);
  }
}
