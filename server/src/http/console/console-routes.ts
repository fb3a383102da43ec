// The web console at /console (docs/architecture.md §9b): a sign-in form, the app shell, its script and style files,
// and the vendored libraries (preact + htm, uPlot) served from node_modules. The app itself talks to the admin API
// (/v1/admin/…) with the session cookie; requireAdmin accepts it and asks for the CSRF token on writes.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Response } from 'express';
import type { AdminPrincipal } from '@enrolld/core/admin-auth.js';
import type { AuditTrail } from '@enrolld/core/audit/ports.js';
import { isEnrollError } from '@enrolld/core/errors.js';
import { CONSOLE_CSP, shellPage, signInPage } from './pages.js';
import { cookieValue, SESSION_COOKIE, type ConsoleSessions } from './console-sessions.js';

export interface ConsoleRoutesDeps {
  sessions: ConsoleSessions;
  authenticateAdmin: (bearer: string | undefined) => Promise<AdminPrincipal>;
  audit: Pick<AuditTrail, 'append'>;
  sessionTtlMs: number;
}

const require = createRequire(import.meta.url);
/** The app's own files (plain ES modules, no build step). */
const APP_DIR = fileURLToPath(new URL('../../../console/', import.meta.url));
/** Library files by the name the app imports them under. */
const VENDOR: Record<string, string> = {
  'htm-preact.js': path.join(path.dirname(require.resolve('htm')), '../preact/standalone.module.js'),
  'uPlot.esm.js': path.join(path.dirname(require.resolve('uplot')), 'uPlot.esm.js'),
  'uPlot.min.css': path.join(path.dirname(require.resolve('uplot')), 'uPlot.min.css'),
};

function securityHeaders(res: Response): void {
  res.setHeader('Content-Security-Policy', CONSOLE_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

export function consoleRoutes(deps: ConsoleRoutesDeps): Router {
  const router = Router();
  router.use('/console', (_req, res, next) => {
    securityHeaders(res);
    next();
  });

  // Express matches /console and /console/ alike; the shell's relative asset paths want the slash.
  router.get('/console/', (req, res) => {
    if (!req.originalUrl.split('?')[0]!.endsWith('/')) {
      res.redirect(303, '/console/');
      return;
    }
    if (!deps.sessions.get(cookieValue(req.get('cookie'), SESSION_COOKIE))) {
      res.redirect(303, '/console/sign-in');
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(shellPage());
  });

  router.get('/console/sign-in', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(signInPage());
  });

  router.post('/console/sign-in', express.urlencoded({ extended: false, limit: '2kb' }), async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const token = typeof req.body?.token === 'string' ? (req.body.token as string).trim() : '';
    let admin: AdminPrincipal;
    try {
      admin = await deps.authenticateAdmin(token || undefined);
    } catch (error) {
      if (!isEnrollError(error) || error.kind !== 'unauthorized') throw error;
      res.status(401).type('html').send(signInPage('That is not an admin token. Check ENROLLD_HOME/admin-token and try again.'));
      return;
    }
    const { id } = deps.sessions.create(admin.name);
    await deps.audit.append({ action: 'console.signed-in', actor: admin.name, requestId: res.locals.requestId as string | undefined });
    res.cookie(SESSION_COOKIE, id, { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: deps.sessionTtlMs });
    res.redirect(303, '/console/');
  });

  router.post('/console/sign-out', (req, res) => {
    deps.sessions.destroy(cookieValue(req.get('cookie'), SESSION_COOKIE));
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, secure: true, sameSite: 'strict', path: '/' });
    res.redirect(303, '/console/sign-in');
  });

  /** The session's admin and CSRF token, for the app (same-origin reads only: the CSP and CORS keep it there). */
  router.get('/console/session', (req, res) => {
    const session = deps.sessions.get(cookieValue(req.get('cookie'), SESSION_COOKIE));
    res.setHeader('Cache-Control', 'no-store');
    if (!session) {
      res.status(401).json({ signedIn: false });
      return;
    }
    res.json({ signedIn: true, admin: session.admin, csrf: session.csrf });
  });

  router.get('/console/assets/vendor/:file', (req, res, next) => {
    const file = VENDOR[String(req.params.file)];
    if (!file) return next();
    res.sendFile(file, { maxAge: '1h' });
  });
  router.use('/console/assets', express.static(APP_DIR, { index: false, maxAge: 0 }));
  return router;
}
