import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { describeIssues } from '@enrolld/protocol';
import { EnrollError } from '@enrolld/core/errors.js';

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Gives every request an id (the caller's X-Request-Id if it is sane) and logs one line when it ends (res.locals.serial: issued). */
export function requestContext(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const incoming = req.get('x-request-id');
    const requestId = incoming && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const line = { requestId, client: req.ip, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 };
      // A request that issued a certificate is worth a line at info: the admin finds it by requestId or serial.
      if (typeof res.locals.serial === 'string') logger.info({ ...line, deviceId: res.locals.deviceId, serial: res.locals.serial }, 'certificate issued');
      else logger.debug(line, 'request');
    });
    next();
  };
}

/** Rejects a missing body (400) or one whose Content-Type is not the expected one (415), before anything reads it. */
export function requireContentType(...types: string[]): RequestHandler {
  return (req, _res, next) => {
    // type-is answers null when there is no body at all (neither Transfer-Encoding nor Content-Length).
    const matched = req.is(types);
    if (matched === null || req.get('content-length') === '0') {
      return next(new EnrollError('bad-request', `the request has no body; send ${types.join(' or ')}`));
    }
    if (matched) return next();
    const given = req.get('content-type') ?? 'none';
    next(new EnrollError('unsupported-media-type', `Content-Type must be ${types.join(' or ')}, not ${given}`));
  };
}

/** A body or query the route's schema refused: 400 naming each offending member. */
export function badRequest(error: z.ZodError): EnrollError {
  return new EnrollError('bad-request', describeIssues(error));
}

/** A name in the path (a profile's, an admin's), checked by its schema: 400 naming what it should have been. */
export function nameParam(schema: z.ZodType<string>, value: unknown, what: string): string {
  const name = schema.safeParse(value);
  if (!name.success) throw new EnrollError('bad-request', `"${String(value)}" is not a valid ${what} name`);
  return name.data;
}
