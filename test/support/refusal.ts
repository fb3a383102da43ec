// What a broker refusal looks like from the client, as one exact label, so a test asserts which refusal it got and a
// timeout can never pass for one.
import type { ConnectOutcome, ProbeOutcome } from './broker-harness.js';
import type { ConnectResult } from './renew-mqtt.js';

/**
 * - 'connack N': the broker answered CONNECT with return code N (MQTT 3.1.1 §3.2.2.3: 0 accepted, 2 identifier
 *   rejected, 3 server unavailable, 4 bad user name or password, 5 not authorized).
 * - 'tls-closed': the server closed the connection right after the TLS handshake, before any CONNACK. Node's TLS server
 *   destroys a peer whose certificate failed verification (rejectUnauthorized) without sending an alert, and under
 *   TLS 1.3 the client has already finished its side of the handshake (RFC 8446 §4.4.4), so a close (or a reset, when
 *   the client's CONNECT raced the close) is all the client sees.
 * - anything else ('timeout', 'connack timeout', an error code) is not a refusal and fails the assertions using it.
 */
export type Outcome = ProbeOutcome | ConnectOutcome | ConnectResult | Error;

const closedByServer = new Set(['closed', 'closed before CONNACK', 'ECONNRESET']);

export function refusalOf(outcome: Outcome): string {
  if (outcome instanceof Error) {
    const code = (outcome as Error & { code?: unknown }).code;
    if (typeof code === 'number') return `connack ${code}`;
    return closedByServer.has(outcome.message) || closedByServer.has(String(code)) ? 'tls-closed' : outcome.message;
  }
  if ('kind' in outcome) {
    if (outcome.kind === 'connack') return `connack ${outcome.code}`;
    return closedByServer.has(outcome.error) ? 'tls-closed' : outcome.error;
  }
  if (outcome.ok) return 'connack 0';
  if (outcome.code !== undefined) return `connack ${outcome.code}`;
  return closedByServer.has(outcome.error) ? 'tls-closed' : outcome.error;
}
