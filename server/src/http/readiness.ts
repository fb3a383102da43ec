// The one answer of /readyz, on the API's HTTPS port and on a standalone broker's plain-HTTP port: 200 with each check,
// or an RFC 9457 problem (503, `unavailable`) whose `checks` and `notReady` members say what is not ready, so an
// operator reading it sees the cause and a load balancer, which only reads the status, drains the process.
import { problemDocument } from '@enrolld/protocol';

export interface ReadinessAnswer {
  status: number;
  contentType: 'application/json' | 'application/problem+json';
  body: Record<string, unknown>;
}

/**
 * `purpose` completes "not ready to …" in the problem's detail; `notes` are members that inform and do not decide
 * readiness (an API replica's `environmentsWithoutCa`).
 */
export function readinessAnswer(checks: Record<string, boolean>, purpose: string, notes: Record<string, unknown> = {}): ReadinessAnswer {
  const notReady = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
  if (notReady.length === 0) return { status: 200, contentType: 'application/json', body: { status: 'ready', checks, ...notes } };
  const problem = problemDocument('unavailable', `not ready to ${purpose}: ${notReady.join(', ')}`, { ...notes, checks, notReady });
  return { status: problem.status, contentType: 'application/problem+json', body: problem };
}
