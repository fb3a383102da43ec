// The web console at /console (docs/architecture.md §9b): a sign-in form, the app shell, its script and style files,
// and the vendored libraries (preact + htm, uPlot) served from node_modules. The app itself talks to the admin API
// (/v1/admin/…) with the session cookie; requireAdmin accepts it and asks for the CSRF token on writes. A browser that
// presents an admin client certificate is signed in by it when it opens the console, without a token.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type Request, type Response } from 'express';
import type { AdminAuthenticator, AdminPrincipal } from '@enrolld/core/admin-auth.js';
import type { AuditTrail } from '@enrolld/core/audit/ports.js';
import { isEnrollError } from '@enrolld/core/errors.js';
import { peerCertificateDer } from '../renew-routes.js';
import { CONSOLE_CSP, shellPage, signInPage, type CertificateSignIn } from './pages.js';
import { cookieValue, SESSION_COOKIE, type ConsoleSessions } from './console-sessions.js';

export interface ConsoleRoutesDeps {
  sessions: ConsoleSessions;
  authenticateAdmin: Pick<AdminAuthenticator, 'bearer' | 'certificate' | 'bearerEnabled'>;
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
  // Read per request: the routes are built before anything is asked of the authenticator.
  const bearerEnabled = () => deps.authenticateAdmin.bearerEnabled;
  router.use('/console', (_req, res, next) => {
    securityHeaders(res);
    next();
  });

  /** What the connection's client certificate makes of a sign-in: none, an admin, or a refusal the page explains. */
  async function certificateSignIn(req: Request): Promise<{ principal?: AdminPrincipal; shown: CertificateSignIn }> {
    const der = peerCertificateDer(req);
    if (!der) return { shown: undefined };
    try {
      const principal = await deps.authenticateAdmin.certificate(der);
      return { principal, shown: { actor: principal.actor } };
    } catch (error) {
      if (!isEnrollError(error) || (error.kind !== 'unauthorized' && error.kind !== 'forbidden')) throw error;
      return { shown: { refused: error.detail } };
    }
  }

  async function startSession(res: Response, principal: AdminPrincipal): Promise<void> {
    const { id } = deps.sessions.create(principal);
    await deps.audit.append({ action: 'console.signed-in', actor: principal.actor, requestId: res.locals.requestId as string | undefined, detail: { credential: principal.credential } });
    res.cookie(SESSION_COOKIE, id, { httpOnly: true, secure: true, sameSite: 'strict', path: '/', maxAge: deps.sessionTtlMs });
  }

  // Express matches /console and /console/ alike; the shell's relative asset paths want the slash.
  router.get('/console/', async (req, res) => {
    if (!req.originalUrl.split('?')[0]!.endsWith('/')) {
      res.redirect(303, '/console/');
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    if (!deps.sessions.get(cookieValue(req.get('cookie'), SESSION_COOKIE))) {
      // Opening the console with an admin certificate signs in by it; anything else goes to the sign-in page.
      const { principal } = await certificateSignIn(req);
      if (!principal) {
        res.redirect(303, '/console/sign-in');
        return;
      }
      await startSession(res, principal);
    }
    res.type('html').send(shellPage());
  });

  router.get('/console/sign-in', async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.type('html').send(signInPage({ bearer: bearerEnabled(), certificate: (await certificateSignIn(req)).shown }));
  });

  router.post('/console/sign-in', express.urlencoded({ extended: false, limit: '2kb' }), async (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    const token = typeof req.body?.token === 'string' ? (req.body.token as string).trim() : '';
    let admin: AdminPrincipal;
    try {
      admin = await deps.authenticateAdmin.bearer(token || undefined);
    } catch (error) {
      if (!isEnrollError(error) || error.kind !== 'unauthorized') throw error;
      const message = bearerEnabled() ? 'That is not an admin token. Check ENROLLD_HOME/admin-token and try again.' : error.detail;
      res.status(401).type('html').send(signInPage({ bearer: bearerEnabled(), certificate: (await certificateSignIn(req)).shown, message }));
      return;
    }
    await startSession(res, admin);
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
    res.json({ signedIn: true, admin: session.principal.actor, role: session.principal.role, csrf: session.csrf });
  });

  router.get('/console/assets/vendor/:file', (req, res, next) => {
    const file = VENDOR[String(req.params.file)];
    if (!file) return next();
    res.sendFile(file, { maxAge: '1h' });
  });
  router.use('/console/assets', express.static(APP_DIR, { index: false, maxAge: 0 }));
  return router;
}
