// MQTT helpers for the rotation tests: a device session with its current certificate (MQTT.js over mTLS), renewal over
// devices/<id>/cert/renew, and a raw probe that reports the CONNACK code of a reconnect.
import type { MqttClient } from 'mqtt';
import { connectDevice, endClient } from './broker-harness.js';
import { topics, type EnrollResponse } from '@enrolld/protocol';
import type { DeviceCreds } from './renew-support.js';
import { waitForValue } from './wait-for.js';

export interface DeviceSession {
  client: MqttClient;
  /** performance.now() of CONNACK. */
  connectedAt: number;
  /** Resolves with performance.now() when the connection closes. */
  closed: Promise<number>;
  messages: Array<{ topic: string; payload: Buffer; at: number }>;
  end(): Promise<void>;
}

export type ConnectResult = { ok: true; session: DeviceSession } | { ok: false; code: number | undefined; error: string };

/** A session on the broker with the device's current certificate, subscribed to `subscribe` before it resolves. */
export async function connectWith(port: number, caPem: string, creds: DeviceCreds, subscribe: string[] = []): Promise<ConnectResult> {
  const outcome = await connectDevice(port, { caChainPem: caPem }, {
    deviceId: creds.deviceId,
    keyPem: creds.keyPem,
    certPem: creds.certPem,
    chainPem: creds.clientChainPem,
  });
  if (!outcome.ok) return { ok: false, code: outcome.code, error: outcome.error };
  const client = outcome.client;
  const connectedAt = performance.now();
  const messages: DeviceSession['messages'] = [];
  const closed = new Promise<number>((resolve) => client.once('close', () => resolve(performance.now())));
  client.on('message', (topic, payload) => messages.push({ topic, payload, at: performance.now() }));
  if (subscribe.length > 0) await new Promise<void>((resolve) => client.subscribe(subscribe, { qos: 1 }, () => resolve()));
  return { ok: true, session: { client, connectedAt, closed, messages, end: () => endClient(client) } };
}

export async function mustConnect(port: number, caPem: string, creds: DeviceCreds, subscribe: string[] = []): Promise<DeviceSession> {
  const result = await connectWith(port, caPem, creds, subscribe);
  if (!result.ok) throw new Error(`connect failed for ${creds.deviceId}: ${result.error}`);
  return result.session;
}

export const renewTopics = (deviceId: string) => [topics.renewAccepted(deviceId), topics.renewRejected(deviceId)];

/** Publishes {csr} on devices/<id>/cert/renew and waits for …/accepted or …/rejected (the session must be subscribed). */
export async function renewOverMqtt(session: DeviceSession, deviceId: string, csrPem: string, timeoutMs = 10_000): Promise<{ accepted: true; response: EnrollResponse } | { accepted: false; problem: Record<string, unknown> }> {
  const before = session.messages.length;
  session.client.publish(topics.renew(deviceId), JSON.stringify({ csr: csrPem }), { qos: 1 });
  const reply = await waitForValue(
    () => session.messages.slice(before).find((m) => m.topic === topics.renewAccepted(deviceId) || m.topic === topics.renewRejected(deviceId)),
    timeoutMs,
    'the renewal answer over MQTT',
    5,
  );
  const body = JSON.parse(reply.payload.toString('utf8')) as Record<string, unknown>;
  return reply.topic === topics.renewAccepted(deviceId) ? { accepted: true, response: body as unknown as EnrollResponse } : { accepted: false, problem: body };
}
