// What the device state machine needs from the wire. The real implementations are http-client.ts and
// mqtt-session.ts; unit tests pass fakes.
import type { KeyObject } from 'node:crypto';
import type { Csr } from './csr.js';
import type { SimError } from './sim-error.js';

export type EnrollVia = 'rest' | 'est';
export type RenewVia = 'rest' | 'est' | 'mqtt';

export interface IssuedCert {
  deviceId: string;
  serial: string;
  certificatePem: string;
  /** issuing chain as sent by the server, leaf excluded */
  chainPem: string[];
  notBefore: number;
  notAfter: number;
  /** when the server's renewal window opens (ms; the answer's `renewAfter`); absent when the answer carries none (EST) */
  renewAfter?: number;
}

export interface DeviceCredentials extends IssuedCert {
  privateKey: KeyObject;
}

export interface MqttHandlers {
  onMessage(topic: string, payload: Buffer): void;
  /** called once, only for a session that had connected */
  onClose(error?: SimError): void;
}

export interface MqttSession {
  /** the broker URL this session is on (a real transport sets it; fakes may not) */
  broker?: string;
  publish(topic: string, payload: string | Buffer, qos: 0 | 1): void;
  subscribe(topics: string[]): Promise<void>;
  /** graceful: DISCONNECT then close */
  end(): Promise<void>;
  /** abrupt: drop the socket (used to simulate a network blip) */
  destroy(): void;
}

export interface DeviceTransport {
  enroll(via: EnrollVia, deviceId: string, token: string, csr: Csr, privateKey: KeyObject): Promise<IssuedCert>;
  renew(via: 'rest' | 'est', creds: DeviceCredentials, csr: Csr, newKey: KeyObject): Promise<IssuedCert>;
  /** resolves after CONNACK 0; rejects with a SimError otherwise */
  connect(deviceId: string, creds: DeviceCredentials, handlers: MqttHandlers): Promise<MqttSession>;
  /** One CONNECT with these credentials and nothing after it: resolves on CONNACK 0; `connect` serves when absent. */
  probe?(deviceId: string, creds: DeviceCredentials): Promise<void>;
  /** The device will not present this certificate again: free what is held for it (its TLS context). */
  release?(creds: DeviceCredentials): void;
}
