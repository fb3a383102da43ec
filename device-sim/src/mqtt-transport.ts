// MQTT over mTLS with MQTT.js 5: clientId = device id (docs/architecture.md), MQTT 3.1.1 (aedes speaks only 3.1.1),
// clean sessions, and no automatic reconnect: the device state machine owns backoff. With several broker URLs (nodes of
// one cluster) devices are spread over them in turn, and a device whose session closed or whose CONNECT failed tries
// the next URL on its next attempt, as a client with a list of endpoints does when its node dies.
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, SecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { connect } from 'mqtt';
import type { IClientOptions, MqttClient } from 'mqtt';
import { SimError, toSimError } from './sim-error.js';
import { createCredentialContexts, type CredentialContexts } from './tls-credentials.js';
import type { DeviceCredentials, MqttHandlers, MqttSession } from './transport.js';

export interface MqttTransportOptions {
  /** one URL, or the nodes of a cluster */
  brokerUrls: readonly URL[];
  ca: string;
  sendChain: boolean;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
  /** the secure context of each certificate, shared with the HTTP transport; one of its own when absent */
  contexts?: CredentialContexts;
}

export interface MqttTransport {
  readonly brokerUrls: readonly URL[];
  /** to this device's current broker; the session names it (`broker`) */
  connect(deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession>;
  /** to one given broker, e.g. to check that every node refuses a revoked certificate */
  connectTo(brokerUrl: URL, deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession>;
  /**
   * One CONNECT and its CONNACK on a bare TLS socket to this device's current broker: resolves on CONNACK 0 (then
   * DISCONNECT), rejects like connect.
   */
  probe(deviceId: string, creds: DeviceCredentials): Promise<void>;
}

/** MQTT 3.1.1 CONNECT (§3.1): clean session, keepalive 0, the client id only (at most 63 characters here). */
function connectPacket(clientId: string): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x00]);
  const remaining = variable.length + 2 + id.length;
  if (remaining > 127) throw new SimError('probe-client-id-too-long', 'client id over 115 bytes', { retryable: false });
  return Buffer.concat([Buffer.from([0x10, remaining]), variable, Buffer.from([id.length >> 8, id.length & 0xff]), id]);
}

const DISCONNECT = Buffer.from([0xe0, 0x00]);

export function createMqttTransport(opts: MqttTransportOptions): MqttTransport {
  // One secure context per certificate, reused across reconnects: parsing the key and chain costs more than a WeakMap lookup
  const contextFor = opts.contexts ?? createCredentialContexts(opts);
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

  // The old-certificate probe asks one question (is this certificate still let in?) and keeps nothing: a bare socket
  // costs a rotation wave far less than an MQTT.js client per probe.
  const probe = (deviceId: string, creds: DeviceCredentials): Promise<void> => {
    const brokerUrl = opts.brokerUrls.length === 1 ? opts.brokerUrls[0]! : urlFor(deviceId);
    const host = brokerUrl.hostname.replace(/^\[|\]$/g, '');
    const port = Number(brokerUrl.port || 8883);
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let handshakeDone = false;
      let received = Buffer.alloc(0);
      const socket = tlsConnect({ host, port, ...(isIP(host) === 0 ? { servername: host } : {}), secureContext: contextFor(creds), rejectUnauthorized: true, noDelay: true } as ConnectionOptions);
      const settle = (err?: unknown): void => {
        if (settled) return;
        settled = true;
        socket.setTimeout(0);
        if (err === undefined) {
          socket.end(DISCONNECT);
          resolve();
        } else {
          socket.destroy();
          reject(toSimError(err, 'connect'));
        }
      };
      socket.setTimeout(opts.connectTimeoutMs, () => settle(new SimError('connect-timeout', `no CONNACK within ${opts.connectTimeoutMs} ms`)));
      socket.once('secureConnect', () => {
        handshakeDone = true;
        socket.write(connectPacket(deviceId));
      });
      socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        if (received.length < 4) return;
        if (received[0] !== 0x20 || received[1] !== 0x02) return settle(new SimError('connect-bad-connack', `expected CONNACK, got ${received.subarray(0, 4).toString('hex')}`));
        const code = received[3]!;
        // the return code as MQTT.js reports it, so toSimError classifies both alike (5 = refused as revoked)
        settle(code === 0 ? undefined : Object.assign(new Error(`Connection refused: ${code}`), { code }));
      });
      socket.on('error', (err) => settle(err));
      socket.once('close', () =>
        settle(
          handshakeDone
            ? new SimError('connect-tls-refused', 'broker closed the connection right after the TLS handshake (client certificate refused?)')
            : new SimError('connect-closed-before-connack', 'connection closed before CONNACK'),
        ),
      );
    });
  };

  return {
    brokerUrls: opts.brokerUrls,
    connectTo,
    probe,
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
