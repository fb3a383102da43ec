// Rotation over MQTT (docs/architecture.md, rotation), as broker hooks:
//  - renewal: a device publishes its CSR (`{"csr": PEM}`, or bare PEM / base64 DER) to devices/<id>/cert/renew and gets
//    the REST enroll shape on …/renew/accepted or an RFC 9457 problem on …/renew/rejected. The broker verified the
//    session's certificate at CONNECT; the renewal core checks it again against the store (revoked a moment ago?).
//  - first use of a successor: every CONNECT asks the lineage whether this serial retires a predecessor.
//  - rotation hints: the sweep's hint reaches a live session of that certificate at once, or waits (in memory, per
//    broker process) until a session of that certificate subscribes to devices/<id>/cert/rotate.
// Answers and hints leave through the outbound relay, which the broker consumes while it runs; the live sessions are
// known from the connect and disconnect hooks, so nothing here holds the broker.
import { problemDocument, topics } from '@enrolld/protocol';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { EnrollError } from '@enrolld/core/errors.js';
import type { Renewal } from '@enrolld/core/renewal/renewal.js';
import type { RotationHint } from '@enrolld/core/renewal/ports.js';
import type { OutboundRelay } from '@enrolld/core/events/outbound-relay.js';
import type { BrokerHooks, DeviceSessionRef } from './session-hooks.js';

export interface RenewalTopicDeps {
  renewal: Pick<Renewal, 'renew'>;
  /** Where replies and hints are published (the broker consumes it). */
  outbound: OutboundRelay;
  lineage?: { successorConnected(serial: string): Promise<boolean> } | undefined;
  logger: Logger;
  registry: Registry;
  /** Names infrastructure failures (database down → 'unavailable'), as the HTTP layer does. */
  classifyError?: (error: unknown) => EnrollError | undefined;
  /** Hints kept for devices that are not connected (beyond it, the oldest is dropped: the device's own timer remains). */
  maxPendingHints?: number;
}

/** The CSR cap (16 KiB) plus room for JSON around a PEM. */
const MAX_RENEW_PAYLOAD = 24 * 1024;

function csrFromPayload(payload: Buffer): string {
  if (payload.length === 0) throw new EnrollError('bad-request', 'empty payload: publish {"csr": "<PEM>"} to request a renewal');
  if (payload.length > MAX_RENEW_PAYLOAD) throw new EnrollError('payload-too-large', `renewal payload larger than ${MAX_RENEW_PAYLOAD} bytes`);
  const text = payload.toString('utf8').trim();
  if (!text.startsWith('{')) return text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new EnrollError('bad-request', 'payload is not valid JSON: publish {"csr": "<PEM>"}');
  }
  const csr = (body as { csr?: unknown } | null)?.csr;
  if (typeof csr !== 'string' || csr.length === 0) throw new EnrollError('bad-request', 'payload must be {"csr": "<PEM>"}');
  return csr;
}

function problemPayload(error: EnrollError): string {
  const retryAfter = error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {};
  return JSON.stringify(problemDocument(error.kind, error.detail, { ...error.extensions, ...retryAfter }));
}

/** MQTT-4.7: does `filter` match `topic`? (`+` one level, `#` the rest.) */
export function filterMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

export function createRenewalTopic(deps: RenewalTopicDeps) {
  const log = deps.logger.child({ component: 'mqtt-rotation' });
  const maxPending = deps.maxPendingHints ?? 100_000;
  /** Devices with a renewal in flight: one at a time per device, so a publish loop cannot queue work. */
  const renewing = new Set<string>();
  /** serial → hint not yet delivered */
  const pendingHints = new Map<string, RotationHint>();
  /** serial → live sessions of that certificate on this broker */
  const liveSessions = new Map<string, number>();

  const requests = new Counter({
    name: 'enrolld_mqtt_renew_requests_total',
    help: 'Renewal requests received on devices/<id>/cert/renew, by answer (accepted, rejected)',
    labelNames: ['answer'],
    registers: [deps.registry],
  });
  const hintsDelivered = new Counter({
    name: 'enrolld_rotation_hints_delivered_total',
    help: 'Rotation hints published on devices/<id>/cert/rotate, by when (live: at once; on-subscribe: when the device came back)',
    labelNames: ['when'],
    registers: [deps.registry],
  });
  new Gauge({
    name: 'enrolld_rotation_hints_pending',
    help: 'Rotation hints this broker holds for certificates with no live session',
    registers: [deps.registry],
    collect() {
      this.set(pendingHints.size);
    },
  });

  function send(topic: string, payload: string): void {
    deps.outbound.publish({ topic, payload: Buffer.from(payload), qos: 1 }).catch((error: unknown) => log.warn({ err: error, topic }, 'publish to device failed'));
  }

  function hintPayload(hint: RotationHint): string {
    // The serial lets a device ignore a hint about a certificate it has already replaced.
    return JSON.stringify({ serial: hint.serial, notAfter: hint.notAfter.toISOString(), reason: 'renewal-window' });
  }

  async function renew(session: DeviceSessionRef, payload: Buffer): Promise<void> {
    const accepted = topics.renewAccepted(session.deviceId);
    const rejected = topics.renewRejected(session.deviceId);
    if (renewing.has(session.deviceId)) {
      requests.inc({ answer: 'rejected' });
      send(rejected, problemPayload(new EnrollError('too-many-requests', 'a renewal for this device is already in progress; wait for its answer', { retryAfterSeconds: 1 })));
      return;
    }
    renewing.add(session.deviceId);
    try {
      const csr = csrFromPayload(payload);
      const result = await deps.renewal.renew({ credential: { kind: 'session', deviceId: session.deviceId, serial: session.serial }, csr, transport: 'mqtt' });
      requests.inc({ answer: 'accepted' });
      send(accepted, JSON.stringify(result.response));
    } catch (error) {
      requests.inc({ answer: 'rejected' });
      if (error instanceof EnrollError) {
        log.info({ deviceId: session.deviceId, serial: session.serial, kind: error.kind, why: error.logDetail }, error.detail);
        send(rejected, problemPayload(error));
      } else {
        // Infrastructure faults (e.g. the database pool timing out) are 503s with Retry-After, as on HTTP.
        const known = deps.classifyError?.(error);
        log.error({ err: error, deviceId: session.deviceId, serial: session.serial }, 'renewal over MQTT failed');
        send(rejected, problemPayload(known ?? new EnrollError('internal', 'an internal error occurred')));
      }
    } finally {
      renewing.delete(session.deviceId);
    }
  }

  const hooks: BrokerHooks = {
    onConnected(session) {
      liveSessions.set(session.serial, (liveSessions.get(session.serial) ?? 0) + 1);
      void deps.lineage?.successorConnected(session.serial);
    },
    onDisconnected(session) {
      const left = (liveSessions.get(session.serial) ?? 1) - 1;
      if (left > 0) liveSessions.set(session.serial, left);
      else liveSessions.delete(session.serial);
    },
    onPublish(session, topic, payload) {
      if (topic !== topics.renew(session.deviceId)) return;
      void renew(session, payload);
    },
    onSubscribed(session, filters) {
      const hint = pendingHints.get(session.serial);
      if (!hint) return;
      const rotate = topics.rotate(session.deviceId);
      if (!filters.some((f) => filterMatches(f, rotate))) return;
      pendingHints.delete(session.serial);
      if (hint.notAfter.getTime() <= Date.now()) return;
      hintsDelivered.inc({ when: 'on-subscribe' });
      send(rotate, hintPayload(hint));
    },
  };

  return {
    hooks,
    /** A hint from the sweep (via the feed): to the live session of that certificate, or kept until it subscribes. */
    deliverHint(hint: RotationHint): void {
      const serial = hint.serial;
      if (liveSessions.has(serial)) {
        hintsDelivered.inc({ when: 'live' });
        send(topics.rotate(hint.deviceId), hintPayload(hint));
        return;
      }
      if (pendingHints.size >= maxPending) {
        const oldest = pendingHints.keys().next().value;
        if (oldest !== undefined) pendingHints.delete(oldest);
      }
      pendingHints.set(serial, hint);
    },
    pendingHintCount: () => pendingHints.size,
  };
}

export type RenewalTopic = ReturnType<typeof createRenewalTopic>;
