import type { ProblemKind } from '@enrolld/protocol';

// The one internal error type (docs/architecture.md §10). `detail` is safe to show the client; `logDetail` is for the log only
// (e.g. which of unknown/used/expired a rejected token was, which the client must not learn).
export class EnrollError extends Error {
  readonly kind: ProblemKind;
  readonly detail: string;
  readonly logDetail: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly extensions: Record<string, unknown> | undefined;

  constructor(
    kind: ProblemKind,
    detail: string,
    options: { logDetail?: string; retryAfterSeconds?: number; extensions?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EnrollError';
    this.kind = kind;
    this.detail = detail;
    this.logDetail = options.logDetail;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.extensions = options.extensions;
  }
}

export function isEnrollError(error: unknown): error is EnrollError {
  return error instanceof EnrollError;
}
