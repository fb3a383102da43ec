// Console sign-in sessions: a random id in an HttpOnly, Secure, SameSite=Strict cookie (never the admin token, never in
// a URL), a CSRF token per session that every state-changing request must echo in a header, and an idle expiry. Kept in
// the API process's memory: a restart signs everyone out, and each API replica has its own.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdminPrincipal } from '@enrolld/core/admin-auth.js';

export interface ConsoleSession {
  /** Who signed in, and how: a bearer session keeps its principal, a certificate session is checked again per request. */
  principal: AdminPrincipal;
  csrf: string;
  expiresAt: number;
}

/** `__Host-` binds the cookie to this host over HTTPS with Path=/ (RFC 6265bis §4.1.3.2). */
export const SESSION_COOKIE = '__Host-enrolld-console';
const MAX_SESSIONS = 10_000;

const keyOf = (id: string) => createHash('sha256').update(id).digest('hex');

export function createConsoleSessions(ttlMs: number, now: () => number = Date.now) {
  // Keyed by the hash of the id, so a heap dump does not hand out live sessions.
  const sessions = new Map<string, ConsoleSession>();
  return {
    create(principal: AdminPrincipal): { id: string; session: ConsoleSession } {
      if (sessions.size >= MAX_SESSIONS) {
        for (const [key, s] of sessions) if (s.expiresAt <= now()) sessions.delete(key);
        if (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      }
      const id = randomBytes(32).toString('base64url');
      const session = { principal, csrf: randomBytes(24).toString('base64url'), expiresAt: now() + ttlMs };
      sessions.set(keyOf(id), session);
      return { id, session };
    },
    /** The live session of a cookie value, its idle expiry pushed back; undefined when unknown or expired. */
    get(id: string | undefined): ConsoleSession | undefined {
      if (!id) return undefined;
      const key = keyOf(id);
      const session = sessions.get(key);
      if (!session) return undefined;
      if (session.expiresAt <= now()) {
        sessions.delete(key);
        return undefined;
      }
      session.expiresAt = now() + ttlMs;
      return session;
    },
    destroy(id: string | undefined): void {
      if (id) sessions.delete(keyOf(id));
    },
  };
}

export type ConsoleSessions = ReturnType<typeof createConsoleSessions>;

export function csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of one cookie from a Cookie header (RFC 6265 §5.4). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
