// MQTT over mTLS with MQTT.js 5: clientId = device id (docs/architecture.md), MQTT 3.1.1 (aedes speaks only 3.1.1),
// clean sessions, and no automatic reconnect: the device state machine owns backoff. With several broker URLs (nodes of
// one cluster) devices are spread over them in turn, and a device whose session closed or whose CONNECT failed tries
// the next URL on its next attempt, as a client with a list of endpoints does when its node dies.
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { clientCertChain } from './issued-cert.js';
import { SimError, toSimError } from './sim-error.js';
import type { DeviceCredentials, MqttHandlers, MqttSession } from './transport.js';

export interface MqttTransportOptions {
  /** one URL, or the nodes of a cluster */
  brokerUrls: readonly URL[];
  ca: string;
  sendChain: boolean;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
}

export interface MqttTransport {
  readonly brokerUrls: readonly URL[];
  /** to this device's current broker; the session names it (`broker`) */
  connect(deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession>;
  /** to one given broker, e.g. to check that every node refuses a revoked certificate */
  connectTo(brokerUrl: URL, deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession>;
}

export function createMqttTransport(opts: MqttTransportOptions): MqttTransport {
  // One secure context per certificate, reused across reconnects: parsing the key and chain costs more than a WeakMap lookup
  const contexts = new WeakMap<DeviceCredentials, SecureContext>();
  const contextFor = (creds: DeviceCredentials): SecureContext => {
    let ctx = contexts.get(creds);
    if (!ctx) {
      ctx = createSecureContext({
        ca: opts.ca,
        cert: clientCertChain(creds, opts.sendChain),
        key: creds.privateKey.export({ type: 'pkcs8', format: 'pem' }),
        minVersion: 'TLSv1.2',
      });
      contexts.set(creds, ctx);
    }
    return ctx;
  };
  if (opts.brokerUrls.length === 0) throw new Error('no broker URL');
  // each device's place in the URL list: first come, first spread; moves on after a close or a failed CONNECT
  const position = new Map<string, number>();
  let nextSpread = 0;
  const urlFor = (deviceId: string): URL => {
    let i = position.get(deviceId);
    if (i === undefined) position.set(deviceId, (i = nextSpread++ % opts.brokerUrls.length));
    return opts.brokerUrls[i]!;
  };
  const moveOn = (deviceId: string, from: URL): void => {
    const i = position.get(deviceId);
    if (i !== undefined && opts.brokerUrls[i] === from) position.set(deviceId, (i + 1) % opts.brokerUrls.length);
  };

  const connectTo = (brokerUrl: URL, deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession> => {
    const host = brokerUrl.hostname.replace(/^\[|\]$/g, '');
    const port = Number(brokerUrl.port || 8883);
    return new Promise<MqttSession>((resolve, reject) => {
      let settled = false;
      let lastError: SimError | undefined;
      // secureContext and noDelay go through MQTT.js to tls.connect / net; its types do not list them
      const options: IClientOptions & { secureContext: SecureContext; noDelay: boolean } = {
        protocol: 'mqtts',
        host,
        port,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        secureContext: contextFor(creds),
        rejectUnauthorized: true,
        clientId: deviceId,
        protocolVersion: 4,
        clean: true,
        keepalive: opts.keepaliveSeconds,
        reconnectPeriod: 0,
        connectTimeout: opts.connectTimeoutMs,
        resubscribe: false,
        queueQoSZero: false,
        // a small CONNECT must not wait on Nagle (RFC 896 delays small segments)
        noDelay: true,
      };
      const client: MqttClient = connect(options);
      let handshakeDone = false;
      client.stream?.once('secureConnect', () => (handshakeDone = true));
      const fail = (err: SimError): void => {
        if (settled) return;
        settled = true;
        client.end(true);
        reject(err);
      };
      client.on('error', (err) => {
        const simErr = toSimError(err, 'connect');
        if (!settled) fail(simErr);
        else lastError ??= simErr;
      });
      client.on('message', (topic, payload) => handlers.onMessage(topic, payload));
      client.once('connect', () => {
        if (settled) return;
        settled = true;
        resolve(sessionOf(client, brokerUrl.href));
        client.once('close', () => {
          handlers.onClose(lastError);
          client.end(true);
        });
      });
      client.once('close', () => {
        // Node's TLS server checks the client cert (CRL included) after the handshake and just destroys the
        // socket, no alert: with TLS 1.3 the client sees a finished handshake, then a bare close
        if (!settled) {
          fail(
            lastError ??
              (handshakeDone
                ? new SimError('connect-tls-refused', 'broker closed the connection right after the TLS handshake (client certificate refused?)')
                : new SimError('connect-closed-before-connack', 'connection closed before CONNACK')),
          );
        }
      });
    });
  };

  return {
    brokerUrls: opts.brokerUrls,
    connectTo,
    async connect(deviceId, creds, handlers) {
      if (opts.brokerUrls.length === 1) return connectTo(opts.brokerUrls[0]!, deviceId, creds, handlers);
      const url = urlFor(deviceId);
      try {
        return await connectTo(url, deviceId, creds, {
          onMessage: handlers.onMessage,
          onClose: (error) => {
            moveOn(deviceId, url);
            handlers.onClose(error);
          },
        });
      } catch (err) {
        moveOn(deviceId, url);
        throw err;
      }
    },
  };
}

function sessionOf(client: MqttClient, broker: string): MqttSession {
  return {
    broker,
    publish(topic, payload, qos) {
      client.publish(topic, payload, { qos }, () => {
        // QoS 1 failures surface as a close; nothing to do per message
      });
    },
    subscribe(topicList) {
      return new Promise((resolve, reject) => {
        client.subscribe(topicList, { qos: 1 }, (err, granted) => {
          if (err) return reject(toSimError(err, 'subscribe'));
          // MQTT 3.1.1 §3.9.3: 0x80 = failure (our ACL said no)
          const refused = (granted ?? []).filter((g) => g.qos === 128);
          if (refused.length > 0) return reject(new SimError('subscribe-refused', `broker refused ${refused.map((g) => g.topic).join(', ')}`));
          resolve();
        });
      });
    },
    end() {
      return new Promise((resolve) => client.end(false, {}, () => resolve()));
    },
    destroy() {
      client.stream?.destroy();
    },
  };
}
