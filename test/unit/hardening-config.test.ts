import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../../server/src/config.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('settings of database timeouts, embedded Postgres supervision, proxies and the failed-token limit', () => {
  it('has defaults', () => {
    const config = loadConfig({});
    expect(config.dbStatementTimeoutMs).toBe(5000);
    expect(config.dbQueryTimeoutMs).toBe(6000);
    expect(config.embeddedPostgres).toEqual({ maxRestarts: 5, restartDelayMs: 1000 });
    expect(config.http).toEqual({ trustedProxies: [], failedTokenLimit: { limit: 20, windowMs: 60_000 } });
  });

  it('takes IPs, CIDR ranges and the named ranges as trusted proxies', () => {
    const config = loadConfig({ TRUSTED_PROXIES: 'loopback, 10.0.0.0/8,192.0.2.1, fd00::/8, ::1' });
    expect(config.http.trustedProxies).toEqual(['loopback', '10.0.0.0/8', '192.0.2.1', 'fd00::/8', '::1']);
  });

  it('refuses a proxy entry that is not an address or range, naming it', () => {
    for (const bad of ['proxy.example', '10.0.0.0/33', '::1/129', '10.0.0.1/8/1', 'everything']) {
      expect(problemsOf({ TRUSTED_PROXIES: `127.0.0.1,${bad}` }).join('\n')).toContain(`"${bad}"`);
    }
  });

  it('refuses a query timeout shorter than the statement timeout', () => {
    expect(problemsOf({ DB_STATEMENT_TIMEOUT: '10s', DB_QUERY_TIMEOUT: '2s' }).join('\n')).toContain('DB_QUERY_TIMEOUT');
    expect(problemsOf({ DB_STATEMENT_TIMEOUT: '2s', DB_QUERY_TIMEOUT: '2s' })).toEqual([]);
  });
});
