// MQTT over mTLS with MQTT.js 5: clientId = device id (docs/architecture.md), MQTT 3.1.1 (aedes speaks only 3.1.1),
// clean sessions, and no automatic reconnect: the device state machine owns backoff.
import type { SecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { SimError, toSimError } from './sim-error.js';
import { createCredentialContexts, type CredentialContexts } from './tls-credentials.js';
import type { DeviceCredentials, MqttHandlers, MqttSession } from './transport.js';

export interface MqttTransportOptions {
  brokerUrl: URL;
  ca: string;
  sendChain: boolean;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  /** the secure context of each certificate, shared with the HTTP transport; one of its own when absent */
  contexts?: CredentialContexts;
}

export interface MqttTransport {
  connect(deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession>;
}

export function createMqttTransport(opts: MqttTransportOptions): MqttTransport {
  // One secure context per certificate, reused across reconnects: parsing the key and chain costs more than a WeakMap lookup
  const contextFor = opts.contexts ?? createCredentialContexts(opts);
  const host = opts.brokerUrl.hostname.replace(/^\[|\]$/g, '');
  const port = Number(opts.brokerUrl.port || 8883);

  return {
    connect(deviceId, creds, handlers) {
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
          resolve(sessionOf(client));
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
    },
  };
}

function sessionOf(client: MqttClient): MqttSession {
  return {
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
