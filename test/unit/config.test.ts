import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, parseDuration, parseSize } from '../../server/src/config.js';
import { defaultConnectionLimits } from '../../server/src/mqtt/limits.js';

describe('configuration', () => {
  it('parses durations', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('15m')).toBe(900);
    expect(parseDuration('24h')).toBe(86_400);
    expect(parseDuration('30d')).toBe(2_592_000);
    expect(parseDuration('1w')).toBeUndefined();
  });

  it('parses sizes, and the broker limits default to the ones the broker ships with', () => {
    expect(parseSize('131072')).toBe(131_072);
    expect(parseSize('128KiB')).toBe(131_072);
    expect(parseSize('1MiB')).toBe(1_048_576);
    expect(parseSize('1MB')).toBeUndefined();
    const { broker } = loadConfig({});
    expect(broker.limits).toEqual(defaultConnectionLimits);
    expect(broker).toMatchObject({ handshakeTimeoutMs: 10_000, maxPendingPerAddress: 256, maxPending: 4096 });
    expect(loadConfig({ BROKER_MAX_PACKET_SIZE: '1MiB', BROKER_PUBLISH_RATE: '2.5', BROKER_HANDSHAKE_TIMEOUT: '500ms' }).broker).toMatchObject({
      handshakeTimeoutMs: 500,
      limits: { maxPacketBytes: 1_048_576, publishRatePerSecond: 2.5 },
    });
    expect(() => loadConfig({ BROKER_MAX_PACKET_SIZE: '10', BROKER_MAX_PENDING: '0', BROKER_PUBLISH_RATE: '0' })).toThrow(ConfigError);
  });

  it('reads the outbound window, the session queue and the CONNECT rate; the window cannot exceed the 16-bit packet ids', () => {
    expect(loadConfig({ BROKER_MAX_OUTBOUND_INFLIGHT: '8', BROKER_MAX_QUEUED_MESSAGES: '0', BROKER_CONNECT_RATE: '0.2', BROKER_CONNECT_BURST: '4' }).broker.limits).toMatchObject({
      maxOutboundInflight: 8,
      maxQueuedMessages: 0,
      connectRatePerSecond: 0.2,
      connectBurst: 4,
    });
    for (const bad of [{ BROKER_MAX_OUTBOUND_INFLIGHT: '0' }, { BROKER_MAX_OUTBOUND_INFLIGHT: '65536' }, { BROKER_MAX_QUEUED_MESSAGES: '-1' }, { BROKER_CONNECT_RATE: '0' }, { BROKER_CONNECT_BURST: '0' }]) {
      expect(() => loadConfig(bad)).toThrow(ConfigError);
    }
  });

  it('has sane defaults and is frozen', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ httpsPort: 8443, mqttsPort: 8883, certificateLifetimeSeconds: 30 * 86_400, tokenTtlSeconds: 86_400, databaseUrl: undefined });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ HTTPS_PORT: 'abc', CERT_LIFETIME: 'soon', LOG_LEVEL: 'loud', DATABASE_URL: 'not a url' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const name of ['HTTPS_PORT', 'CERT_LIFETIME', 'LOG_LEVEL', 'DATABASE_URL']) expect(problems).toContain(name);
  });

  it('ENROLLD_ENV: `default` unless set, an environment name, and the cluster prefix of another environment is its own', () => {
    expect(loadConfig({})).toMatchObject({ environment: 'default', broker: { cluster: { prefix: 'enrolld:mqtt:' } } });
    expect(loadConfig({ ENROLLD_ENV: 'dev' })).toMatchObject({ environment: 'dev', broker: { cluster: { prefix: 'enrolld:mqtt:dev:' } } });
    expect(loadConfig({ ENROLLD_ENV: 'dev', BROKER_CLUSTER_PREFIX: 'site-a:' }).broker.cluster.prefix).toBe('site-a:');
    expect(() => loadConfig({ ENROLLD_ENV: 'Dev!' })).toThrow(/ENROLLD_ENV: must be an environment name/);
  });

  it("BROKER_HTTP_PORT: 9883 on LISTEN_HOST unless BROKER_HTTP_HOST moves it; a port, never MQTTS_PORT's on the same host", () => {
    expect(loadConfig({}).brokerHttp).toEqual({ host: '0.0.0.0', port: 9883 });
    expect(loadConfig({ LISTEN_HOST: '127.0.0.1', BROKER_HTTP_PORT: '0' }).brokerHttp).toEqual({ host: '127.0.0.1', port: 0 });
    expect(loadConfig({ BROKER_HTTP_HOST: '10.0.0.5', BROKER_HTTP_PORT: '8883' }).brokerHttp).toEqual({ host: '10.0.0.5', port: 8883 });
    expect(() => loadConfig({ BROKER_HTTP_PORT: 'metrics' })).toThrow(/BROKER_HTTP_PORT/);
    expect(() => loadConfig({ BROKER_HTTP_PORT: '70000' })).toThrow(/BROKER_HTTP_PORT/);
    expect(() => loadConfig({ BROKER_HTTP_PORT: '8883' })).toThrow(/BROKER_HTTP_PORT: must differ from MQTTS_PORT \(8883\)/);
    expect(() => loadConfig({ MQTTS_PORT: '9883' })).toThrow(/BROKER_HTTP_PORT: must differ from MQTTS_PORT/);
    expect(() => loadConfig({ BROKER_HTTP_HOST: 'a host' })).toThrow(/BROKER_HTTP_HOST: must be an IP address or a host name/);
    // Both 0: two free ports.
    expect(loadConfig({ MQTTS_PORT: '0', BROKER_HTTP_PORT: '0' }).brokerHttp.port).toBe(0);
  });

  it('refuses a lifetime that the backdate would use up', () => {
    expect(() => loadConfig({ CERT_LIFETIME: '2m', CERT_BACKDATE: '5m' })).toThrow(/CERT_LIFETIME: must be longer than CERT_BACKDATE/);
    expect(loadConfig({ CERT_LIFETIME: '2m', CERT_BACKDATE: '5s' }).certificateLifetimeSeconds).toBe(120);
  });
});
