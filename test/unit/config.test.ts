import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig, parseDuration } from '../../server/src/config.js';

describe('configuration', () => {
  it('parses durations', () => {
    expect(parseDuration('90')).toBe(90);
    expect(parseDuration('15m')).toBe(900);
    expect(parseDuration('24h')).toBe(86_400);
    expect(parseDuration('30d')).toBe(2_592_000);
    expect(parseDuration('1w')).toBeUndefined();
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

  it('refuses a lifetime that the backdate would use up', () => {
    expect(() => loadConfig({ CERT_LIFETIME: '2m', CERT_BACKDATE: '5m' })).toThrow(/CERT_LIFETIME: must be longer than CERT_BACKDATE/);
    expect(loadConfig({ CERT_LIFETIME: '2m', CERT_BACKDATE: '5s' }).certificateLifetimeSeconds).toBe(120);
  });
});
