// Payloads of renewal over MQTT (DESIGN.md §4): the device publishes `{csr}` (PEM) to devices/<id>/cert/renew and
// reads the answer on …/accepted (the REST enroll shape, or bare PEM) or …/rejected (an RFC 9457 problem).
// The protocol package does not pin these payloads yet; this reader accepts both likely forms.
import type { KeyObject } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import type { Problem } from '@enrolld/protocol';
import { issuedFromRest } from './issued-cert.js';
import { splitPem } from './pem.js';
import { SimError, httpError } from './sim-error.js';
import type { IssuedCert } from './transport.js';

function accepted(payload: Buffer, deviceId: string, privateKey: KeyObject): IssuedCert {
  const text = payload.toString('utf8');
  try {
    return issuedFromRest(JSON.parse(text), privateKey);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  const pems = splitPem(text);
  const leafPem = pems.find((pem) => new X509Certificate(pem).checkPrivateKey(privateKey));
  if (!leafPem) throw new SimError('renew-mqtt-bad-response', 'renew/accepted holds no certificate for our key');
  const leaf = new X509Certificate(leafPem);
  return {
    deviceId,
    serial: leaf.serialNumber.toLowerCase(),
    certificatePem: leaf.toString(),
    chainPem: pems.filter((p) => p !== leafPem),
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
  };
}

function rejected(payload: Buffer): SimError {
  let problem: Problem | undefined;
  try {
    const body = JSON.parse(payload.toString('utf8')) as Problem;
    if (typeof body === 'object' && body !== null) problem = body;
  } catch {
    // not JSON: keep the status-less error below
  }
  return httpError(problem?.status ?? 400, problem, 'renew-mqtt');
}

export const parseMqttRenewReply = { accepted, rejected };
