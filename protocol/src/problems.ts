// Problem kinds shared by server and clients, and the one builder of their RFC 9457 problem documents, used on HTTP,
// on EST and on MQTT `…/renew/rejected`, so a kind has the same status, title and `type` wherever it is sent.
import { z } from 'zod';

export const PROBLEM_KINDS = [
  'bad-request',
  'bad-csr',
  'bad-key',
  'bad-signature-algorithm',
  'identity-mismatch',
  'unauthorized',
  'forbidden',
  'not-found',
  'conflict',
  'payload-too-large',
  'unsupported-media-type',
  'not-acceptable',
  'too-many-requests',
  'revoked',
  'expired',
  'unavailable',
  'environment-ca-unavailable',
  'internal',
] as const;

export type ProblemKind = (typeof PROBLEM_KINDS)[number];

/**
 * The `status` of each kind's problem document (RFC 9457 §3.1.4), the same on HTTP and on MQTT `…/rejected`.
 * Client faults are 4xx, never 5xx.
 */
export const PROBLEM_STATUS: Record<ProblemKind, number> = {
  'bad-request': 400,
  'bad-csr': 400,
  'bad-key': 400,
  'bad-signature-algorithm': 400,
  'identity-mismatch': 400,
  unauthorized: 401,
  forbidden: 403,
  revoked: 403,
  expired: 403,
  'not-found': 404,
  'not-acceptable': 406,
  conflict: 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'too-many-requests': 429,
  internal: 500,
  unavailable: 503,
  // A deployment fault of the replica that answered, not the client's: another replica (or this one, once its home
  // holds the environment's CA) can serve the same request.
  'environment-ca-unavailable': 503,
};

/** The `title` of each kind (RFC 9457 §3.1.3: the same for every occurrence of the type). */
export const PROBLEM_TITLE: Record<ProblemKind, string> = {
  'bad-request': 'Bad request',
  'bad-csr': 'Malformed or invalid CSR',
  'bad-key': 'Public key not allowed',
  'bad-signature-algorithm': 'Signature algorithm not allowed',
  'identity-mismatch': 'CSR names another identity',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  revoked: 'Certificate revoked',
  expired: 'Certificate expired',
  'not-found': 'Not found',
  'not-acceptable': 'Not acceptable',
  conflict: 'Conflict',
  'payload-too-large': 'Payload too large',
  'unsupported-media-type': 'Unsupported media type',
  'too-many-requests': 'Too many requests',
  internal: 'Internal server error',
  unavailable: 'Service unavailable',
  'environment-ca-unavailable': "The environment's CA is not available on this server",
};

export const PROBLEM_TYPE_BASE = 'https://enrolld.dev/problems/';

export function problemType(kind: ProblemKind): string {
  return PROBLEM_TYPE_BASE + kind;
}

/** The kind a problem document names, if its `type` is one of ours. */
export function problemKindOf(problem: { type?: unknown } | undefined): ProblemKind | undefined {
  const type = problem?.type;
  if (typeof type !== 'string' || !type.startsWith(PROBLEM_TYPE_BASE)) return undefined;
  const kind = type.slice(PROBLEM_TYPE_BASE.length);
  return (PROBLEM_KINDS as readonly string[]).includes(kind) ? (kind as ProblemKind) : undefined;
}

/** RFC 9457 §3: the members every problem carries; extension members (requestId, retryAfterSeconds, …) pass through. */
export const problemSchema = z.looseObject({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string().optional(),
  instance: z.string().optional(),
  requestId: z.string().optional(),
});
export type Problem = z.infer<typeof problemSchema>;

/**
 * The problem document of a kind. Extension members come first so they can never overwrite the standard members;
 * `undefined` extensions are left out of the JSON like any other undefined member.
 */
export function problemDocument(kind: ProblemKind, detail: string | undefined, extensions: Record<string, unknown> = {}): Problem {
  return {
    ...extensions,
    type: problemType(kind),
    title: PROBLEM_TITLE[kind],
    status: PROBLEM_STATUS[kind],
    ...(detail !== undefined ? { detail } : {}),
  };
}
