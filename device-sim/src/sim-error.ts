// One error type for everything a device can meet on the wire, with a short `kind` for the report's
// "errors by kind" table, and the two facts the state machine acts on: revoked? worth retrying?
import { CONNACK, problemKindOf } from '@enrolld/protocol';
import type { Problem } from '@enrolld/protocol';

export class SimError extends Error {
  constructor(
    readonly kind: string,
    message: string,
    readonly opts: { revoked?: boolean; retryable?: boolean; status?: number; problem?: Problem; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'SimError';
  }
  get revoked(): boolean {
    return this.opts.revoked ?? false;
  }
  get retryable(): boolean {
    return this.opts.retryable ?? true;
  }
  get status(): number | undefined {
    return this.opts.status;
  }
  /** How long the server asked to wait before retrying (Retry-After on a 503 or 429). */
  get retryAfterMs(): number | undefined {
    return this.opts.retryAfterMs;
  }
}

/** RFC 9110 §10.2.3: Retry-After is delay-seconds or an HTTP-date; anything else is ignored. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * HTTP answer → SimError. A 401/403 problem of type `revoked` means stop for good. A 503 or 429 carries the server's
 * Retry-After (RFC 9110 §15.6.4, RFC 6585 §4), which the device honours instead of its own backoff.
 */
export function httpError(status: number, problem: Problem | undefined, what: string, retryAfterMs?: number): SimError {
  const problemKind = problemKindOf(problem);
  const revoked = (status === 401 || status === 403) && problemKind === 'revoked';
  const retryable = status >= 500 || status === 429 || status === 408;
  const kind = `${what}-http-${status}${problemKind ? `-${problemKind}` : ''}`;
  const detail = problem?.detail ?? problem?.title ?? '';
  const honoured = (status === 503 || status === 429) && retryAfterMs !== undefined ? { retryAfterMs } : {};
  return new SimError(kind, `${what}: HTTP ${status} ${detail}`.trim(), { revoked, retryable, status, ...honoured, ...(problem ? { problem } : {}) });
}

const TLS_REVOKED_CODES = new Set(['ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'ERR_SSL_TLSV1_ALERT_CERTIFICATE_REVOKED']);

/** Anything thrown by MQTT.js, node:tls or node:net → SimError. */
export function toSimError(err: unknown, what: string): SimError {
  if (err instanceof SimError) return err;
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = e?.code;
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (typeof code === 'number') {
    // MQTT 3.1.1 §3.2.2.3: 5 = not authorized, which is what enrolld answers a revoked cert at CONNECT
    const revoked = code === CONNACK.notAuthorized;
    return new SimError(`${what}-connack-${code}`, message, { revoked, retryable: !revoked });
  }
  if (typeof code === 'string') {
    if (TLS_REVOKED_CODES.has(code)) return new SimError(`${what}-tls-revoked`, message, { revoked: true, retryable: false });
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
      return new SimError(`${what}-${code.toLowerCase().replace(/_/g, '-')}`, message, { retryable: true });
    }
    return new SimError(`${what}-${code.toLowerCase()}`, message, { retryable: true });
  }
  if (/certificate revoked/i.test(message)) return new SimError(`${what}-tls-revoked`, message, { revoked: true, retryable: false });
  if (/timeout|timed out/i.test(message)) return new SimError(`${what}-timeout`, message, { retryable: true });
  return new SimError(`${what}-error`, message, { retryable: true });
}
