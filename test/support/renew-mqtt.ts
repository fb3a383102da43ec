// MQTT helpers for the rotation tests: a device session with its current certificate (MQTT.js over mTLS), renewal over
// devices/<id>/cert/renew, and a raw probe that reports the CONNACK code of a reconnect.
import mqtt, { type MqttClient } from 'mqtt';
import { topics, type EnrollResponse } from '@enrolld/protocol';
import type { DeviceCreds } from './renew-support.js';

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

export function connectWith(port: number, caPem: string, creds: DeviceCreds, subscribe: string[] = []): Promise<ConnectResult> {
  return new Promise((resolve) => {
    const client = mqtt.connect({
      protocol: 'mqtts',
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: caPem,
      cert: creds.clientChainPem,
      key: creds.keyPem,
      clientId: creds.deviceId,
      protocolVersion: 4,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    const messages: DeviceSession['messages'] = [];
    let resolveClosed: (at: number) => void = () => undefined;
    const closed = new Promise<number>((r) => (resolveClosed = r));
    let settled = false;
    client.on('message', (topic, payload) => messages.push({ topic, payload, at: performance.now() }));
    client.on('close', () => resolveClosed(performance.now()));
    client.once('connect', () => {
      const connectedAt = performance.now();
      const done = () => {
        settled = true;
        resolve({
          ok: true,
          session: { client, connectedAt, closed, messages, end: () => new Promise<void>((r) => client.end(true, {}, () => r())) },
        });
      };
      if (subscribe.length === 0) return done();
      client.subscribe(subscribe, { qos: 1 }, () => done());
    });
    client.once('error', (error: Error & { code?: number | string }) => {
      if (settled) return;
      settled = true;
      client.end(true);
      resolve({ ok: false, code: typeof error.code === 'number' ? error.code : undefined, error: String(error.code ?? error.message) });
    });
    client.once('close', () => {
      if (settled) return;
      settled = true;
      client.end(true);
      resolve({ ok: false, code: undefined, error: 'closed before CONNACK' });
    });
  });
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
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = session.messages.slice(before).find((m) => m.topic === topics.renewAccepted(deviceId) || m.topic === topics.renewRejected(deviceId));
    if (reply) {
      const body = JSON.parse(reply.payload.toString('utf8')) as Record<string, unknown>;
      return reply.topic === topics.renewAccepted(deviceId) ? { accepted: true, response: body as unknown as EnrollResponse } : { accepted: false, problem: body };
    }
    if (Date.now() > deadline) throw new Error('no renewal answer over MQTT');
    await new Promise((r) => setTimeout(r, 5));
  }
}
