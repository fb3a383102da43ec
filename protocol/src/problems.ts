// Problem kinds shared by server and clients. The HTTP layer maps each kind to a status and an RFC 9457
// problem document whose `type` is stable: `https://enrolld.dev/problems/<kind>`.
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
};

export const PROBLEM_TYPE_BASE = 'https://enrolld.dev/problems/';

export function problemType(kind: ProblemKind): string {
  return PROBLEM_TYPE_BASE + kind;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  requestId?: string;
  [extension: string]: unknown;
}
