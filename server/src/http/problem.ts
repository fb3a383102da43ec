import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { ProblemKind } from '@enrolld/protocol';
import { PROBLEM_STATUS, problemDocument } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';

export function statusOf(kind: ProblemKind): number {
  return PROBLEM_STATUS[kind];
}

/** The RFC 9457 document of an EnrollError: the shared builder, with the request id as an extension member. */
export function problemOf(error: EnrollError, requestId: string | undefined) {
  return problemDocument(error.kind, error.detail, { ...error.extensions, ...(requestId ? { requestId } : {}) });
}

/**
 * Errors express raises for the client's input → problem kinds: body-parser / raw-body by `type`, a body whose
 * Content-Encoding does not decode (a zlib error body-parser gives status 400), and a path parameter that is not valid
 * percent-encoding (the router's URIError, status 400). Anything they raise is the client's fault.
 */
function fromHttpInput(error: unknown): EnrollError | undefined {
  const e = error as { type?: unknown; status?: unknown; message?: string; code?: unknown } | undefined;
  if (!e) return undefined;
  if (error instanceof URIError && e.status === 400) {
    return new EnrollError('bad-request', 'the path holds malformed percent-encoding (RFC 3986 §2.1)');
  }
  if (typeof e.type !== 'string') {
    return e.status === 400 && typeof e.code === 'string' && /^(Z_|ERR_)/.test(e.code)
      ? new EnrollError('bad-request', 'request body does not decode as its Content-Encoding says')
      : undefined;
  }
  switch (e.type) {
    case 'entity.too.large':
      return new EnrollError('payload-too-large', 'request body is larger than this endpoint accepts');
    case 'entity.parse.failed':
      return new EnrollError('bad-request', 'request body is not valid JSON');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new EnrollError('unsupported-media-type', e.message ?? 'unsupported content encoding');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new EnrollError('bad-request', 'request body could not be read');
    default:
      return typeof e.status === 'number' && e.status >= 400 && e.status < 500
        ? new EnrollError('bad-request', 'request body could not be read')
        : undefined;
  }
}

export interface ProblemDeps {
  logger: Logger;
  /** Lets the composition root name infrastructure failures (e.g. database down → 'unavailable'). */
  classifyError?: (error: unknown) => EnrollError | undefined;
}

export function sendProblem(res: Response, error: EnrollError, requestId: string | undefined): void {
  const problem = problemOf(error, requestId);
  if (error.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(error.retryAfterSeconds));
  if (problem.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

export function problemHandler(deps: ProblemDeps): ErrorRequestHandler {
  return (error, req, res, _next) => {
    const requestId = res.locals.requestId as string | undefined;
    const known = error instanceof EnrollError ? error : (fromHttpInput(error) ?? deps.classifyError?.(error));
    if (res.headersSent) {
      deps.logger.error({ requestId, client: req.ip, err: error }, 'error after response started');
      res.destroy();
      return;
    }
    if (known) {
      const level = statusOf(known.kind) >= 500 ? 'error' : 'info';
      deps.logger[level](
        { requestId, client: req.ip, kind: known.kind, why: known.logDetail, method: req.method, path: req.path, ...(level === 'error' ? { err: error } : {}) },
        known.detail,
      );
      sendProblem(res, known, requestId);
      return;
    }
    // An unexpected fault: a fixed message and the request id out, the cause to the log, once.
    deps.logger.error({ requestId, client: req.ip, err: error, method: req.method, path: req.path }, 'unhandled error');
    sendProblem(res, new EnrollError('internal', 'an internal error occurred; quote the requestId when reporting it'), requestId);
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new EnrollError('not-found', `no route for ${req.method} ${req.path}`));
};
