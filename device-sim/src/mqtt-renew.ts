// Payloads of renewal over MQTT (docs/architecture.md): the device publishes `{csr}` (PEM) to devices/<id>/cert/renew
// and reads the answer on …/accepted (the REST enroll shape, renewResponseSchema) or …/rejected (an RFC 9457 problem).
import type { KeyObject } from 'node:crypto';
import { problemSchema } from '@enrolld/protocol';
import { issuedFromRest } from './issued-cert.js';
import { SimError, httpError } from './sim-error.js';
import type { IssuedCert } from './transport.js';

function accepted(payload: Buffer, privateKey: KeyObject): IssuedCert {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new SimError('renew-mqtt-bad-response', 'renew/accepted is not JSON');
  }
  return issuedFromRest(body, privateKey);
}

function rejected(payload: Buffer): SimError {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    // not JSON: a status-less error below
  }
  const parsed = problemSchema.safeParse(body);
  const problem = parsed.success ? parsed.data : undefined;
  return httpError(problem?.status ?? 400, problem, 'renew-mqtt');
}

export const parseMqttRenewReply = { accepted, rejected };
