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
