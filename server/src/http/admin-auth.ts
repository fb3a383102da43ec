import type { RequestHandler } from 'express';
import type { AdminPrincipal } from '@enrolld/core/admin-auth.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** Express guard for /v1/admin: every route behind it needs a valid admin bearer credential (ADM-01). */
export function requireAdmin(authenticate: (bearer: string | undefined) => Promise<AdminPrincipal>): RequestHandler {
  return async (req, res, next) => {
    const match = BEARER.exec(req.get('authorization') ?? '');
    res.locals.admin = await authenticate(match?.[1]);
    next();
  };
}

export function adminOf(locals: Record<string, unknown>): AdminPrincipal {
  return locals.admin as AdminPrincipal;
}
