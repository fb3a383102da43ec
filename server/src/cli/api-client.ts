import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { problemSchema, type Problem } from '@enrolld/protocol';
import type { z } from 'zod';

/** How the admin commands authenticate: a bearer token, or an admin client certificate on the TLS connection. */
export interface AdminCredential {
  adminToken?: string | undefined;
  clientCertificate?: { certPem: string; keyPem: string } | undefined;
}

export interface ApiClientOptions extends AdminCredential {
  baseUrl: string;
  caPem: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
    body: string,
  ) {
    super(problem?.detail ? `${problem.title ?? 'error'} (${status}): ${problem.detail}` : `HTTP ${status}: ${body.slice(0, 200)}`);
    this.name = 'ApiError';
  }
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A small HTTPS client for the admin API that trusts only our root CA. */
export function createApiClient(options: ApiClientOptions) {
  const certificate = options.clientCertificate;
  const agent = new https.Agent({ ca: options.caPem, keepAlive: true, ...(certificate ? { cert: certificate.certPem, key: certificate.keyPem } : {}) });
  async function request(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<ApiResponse> {
    const url = new URL(path, options.baseUrl);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = https.request(
        url,
        {
          method,
          agent,
          headers: {
            accept,
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
            ...(options.adminToken ? { authorization: `Bearer ${options.adminToken}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ECONNREFUSED' ? new Error(`cannot reach enrolld at ${options.baseUrl} (is \`enrolld up\` running?)`) : error);
      });
      req.end(payload);
    });
  }
  /** The body of a 2xx answer as text; anything else becomes an ApiError carrying the RFC 9457 problem. */
  async function text(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<string> {
    const res = await request(method, path, body, accept);
    const answer = res.body.toString('utf8');
    if (res.status >= 400) throw new ApiError(res.status, problemOf(answer), answer);
    return answer;
  }
  /** A JSON answer, checked against the route's response schema from @enrolld/protocol. */
  async function call<S extends z.ZodType>(schema: S, method: string, path: string, body?: unknown): Promise<z.infer<S>> {
    return schema.parse(JSON.parse(await text(method, path, body)));
  }
  return { request, text, call, close: () => agent.destroy() };
}

export type ApiClient = ReturnType<typeof createApiClient>;

function problemOf(body: string): Problem | undefined {
  try {
    const parsed = problemSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export async function readAdminToken(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    throw new Error(`cannot read the admin token at ${file} (run \`enrolld up\` once, set ENROLLD_HOME, or give an admin certificate: --cert/--key or ENROLLD_HOME/admin.pem and admin.key)`);
  }
}
