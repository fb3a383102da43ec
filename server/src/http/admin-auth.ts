import type { RequestHandler } from 'express';
import type { AdminPrincipal } from '@enrolld/core/admin-auth.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { cookieValue, csrfMatches, SESSION_COOKIE, type ConsoleSessions } from './console/console-sessions.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The header the console echoes its session's CSRF token in on every state-changing request. */
export const CSRF_HEADER = 'x-csrf-token';

/**
 * Express guard for /v1/admin: every route behind it needs a valid admin bearer credential (ADM-01), or a console
 * session cookie. A cookie is sent by the browser on its own, so a request it authenticates must also carry the
 * session's CSRF token in a header unless it only reads (a cross-site form cannot set headers).
 */
export function requireAdmin(authenticate: (bearer: string | undefined) => Promise<AdminPrincipal>, sessions?: ConsoleSessions): RequestHandler {
  return async (req, res, next) => {
    const authorization = req.get('authorization');
    const session = authorization === undefined ? sessions?.get(cookieValue(req.get('cookie'), SESSION_COOKIE)) : undefined;
    if (session) {
      if (!SAFE_METHODS.has(req.method) && !csrfMatches(session, req.get(CSRF_HEADER))) {
        throw new EnrollError('forbidden', 'the console session needs its CSRF token on this request');
      }
      res.locals.admin = { name: session.admin } satisfies AdminPrincipal;
      next();
      return;
    }
    const match = BEARER.exec(authorization ?? '');
    res.locals.admin = await authenticate(match?.[1]);
    next();
  };
}

export function adminOf(locals: Record<string, unknown>): AdminPrincipal {
  return locals.admin as AdminPrincipal;
}
