import type { Request, RequestHandler } from 'express';
import { adminRoleFor, roleAllows } from '@enrolld/protocol';
import type { AdminAuthenticator, AdminPrincipal } from '@enrolld/core/admin-auth.js';
import { EnrollError } from '@enrolld/core/errors.js';
import { cookieValue, csrfMatches, SESSION_COOKIE, type ConsoleSessions } from './console/console-sessions.js';
import { peerCertificateDer } from './renew-routes.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The header the console echoes its session's CSRF token in on every state-changing request. */
export const CSRF_HEADER = 'x-csrf-token';

export type AdminCredentialCheck = Pick<AdminAuthenticator, 'bearer' | 'certificate'>;

/**
 * A browser presents its client certificate on every request to this origin, including those another site makes it
 * send (a form post): like a cookie, it is ambient. A state-changing request it authenticates must therefore come from
 * this origin. Browsers name the initiator (Sec-Fetch-Site, Origin); the CLI and scripts send neither.
 */
function refuseCrossSite(req: Request): void {
  if (SAFE_METHODS.has(req.method)) return;
  const site = req.get('sec-fetch-site');
  const origin = req.get('origin');
  const crossSite = (site !== undefined && site !== 'same-origin' && site !== 'none') || (origin !== undefined && origin !== `${req.protocol}://${req.get('host')}`);
  if (crossSite) throw new EnrollError('forbidden', 'a request another site started cannot act with an admin certificate');
}

/**
 * Who the request is, by the first credential it carries: an Authorization header (bearer), a console session cookie,
 * or the TLS connection's client certificate. A cookie is sent by the browser on its own, so a request it authenticates
 * must also carry the session's CSRF token in a header unless it only reads; a console session made from a certificate
 * holds only while the connection still presents that admin's certificate, whose record gives the current role.
 */
async function authenticate(req: Request, check: AdminCredentialCheck, sessions: ConsoleSessions | undefined): Promise<AdminPrincipal> {
  const authorization = req.get('authorization');
  if (authorization !== undefined) return check.bearer(BEARER.exec(authorization)?.[1]);
  const session = sessions?.get(cookieValue(req.get('cookie'), SESSION_COOKIE));
  if (session) {
    if (!SAFE_METHODS.has(req.method) && !csrfMatches(session, req.get(CSRF_HEADER))) {
      throw new EnrollError('forbidden', 'the console session needs its CSRF token on this request');
    }
    if (session.principal.credential === 'bearer') return session.principal;
    const current = await check.certificate(peerCertificateDer(req));
    if (current.name !== session.principal.name) throw new EnrollError('unauthorized', 'this console session belongs to another admin certificate');
    return current;
  }
  const der = peerCertificateDer(req);
  if (der) refuseCrossSite(req);
  return check.certificate(der);
}

/**
 * Express guard for /v1/admin: authenticates the caller, then checks the role the route needs (adminRouteRoles in
 * protocol/src/routes.ts; a route without a line needs owner). The principal goes to res.locals.admin.
 */
export function requireAdmin(check: AdminCredentialCheck, sessions?: ConsoleSessions): RequestHandler {
  return async (req, res, next) => {
    const principal = await authenticate(req, check, sessions);
    const path = req.baseUrl + req.path;
    const required = adminRoleFor(req.method, path) ?? 'owner';
    if (!roleAllows(principal.role, required)) {
      throw new EnrollError('forbidden', `${principal.actor} has the role ${principal.role}; ${req.method} ${path} needs ${required}`, {
        extensions: { role: principal.role, requiredRole: required },
      });
    }
    res.locals.admin = principal;
    next();
  };
}

export function adminOf(locals: Record<string, unknown>): AdminPrincipal {
  return locals.admin as AdminPrincipal;
}
