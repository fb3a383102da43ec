import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../server/src/config.js';

// How the shipped deployment files check brokers, without HAProxy or Docker: a broker gets devices only while its
// /readyz (BROKER_HTTP_PORT) says it admits them; MQTT itself stays TCP passthrough so mTLS reaches the broker.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const defaults = loadConfig({});

/**
 * haproxy.cfg sections (`backend brokers` → its directive lines, comments dropped), each `"${VAR-default}"` read as
 * its default: what HAProxy sees under docker-compose, which passes none of them.
 */
function sections(text: string): Map<string, string[]> {
  const found = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').replace(/"\$\{[A-Z0-9_]+-([^}"]*)\}"/g, '$1').trimEnd();
    if (!line.trim()) continue;
    if (/^\S/.test(line)) found.set(line.trim(), (current = []));
    else current?.push(line.trim().replace(/\s+/g, ' '));
  }
  return found;
}

describe('broker health checks in the deployment files', () => {
  const haproxy = sections(read('deploy/haproxy.cfg'));

  it('haproxy.cfg: MQTT is TCP passthrough, each broker is checked by HTTP GET /readyz on BROKER_HTTP_PORT', () => {
    expect(haproxy.get('frontend mqtts')).toContain('mode tcp');
    const brokers = haproxy.get('backend brokers')!;
    expect(brokers).toBeDefined();
    expect(brokers).toContain('mode tcp');
    expect(brokers).toContain('option httpchk GET /readyz');
    expect(brokers).toContain('http-check expect status 200');
    const servers = brokers.filter((l) => l.startsWith('server '));
    expect(servers.length).toBeGreaterThanOrEqual(2);
    for (const server of servers) {
      // Traffic to the MQTT port, the check to the HTTP one (plain HTTP: no check-ssl).
      expect(server).toMatch(new RegExp(`^server \\S+ \\S+:${defaults.mqttsPort} check port ${defaults.brokerHttp.port}\\b`));
      expect(server).not.toContain('check-ssl');
    }
  });

  it('haproxy.cfg: every address is an environment variable whose default is a docker-compose service, which sets none', () => {
    const text = read('deploy/haproxy.cfg');
    const compose = read('docker-compose.yml');
    const variables = [...text.matchAll(/"\$\{([A-Z0-9_]+)(-[^}"]*)?\}"/g)];
    expect(variables.length).toBeGreaterThanOrEqual(8);
    for (const [, name, fallback] of variables) {
      expect(fallback).toBeDefined();
      expect(compose).not.toContain(name!);
    }
    const servers = [...sections(text).values()].flat().filter((l) => l.startsWith('server '));
    for (const server of servers) expect(compose).toContain(`\n  ${server.split(' ')[2]!.split(':')[0]}:\n`);
    expect(sections(text).get('frontend mqtts')).toContain(`bind :${defaults.mqttsPort}`);
  });

  it('docker-compose: the brokers\' healthcheck asks /readyz on that port', () => {
    const compose = read('docker-compose.yml');
    const broker1 = compose.slice(compose.indexOf('  broker-1:\n'), compose.indexOf('  broker-2:\n'));
    expect(broker1).toContain('test: ["CMD", "node", "server/scripts/healthcheck.mjs", "broker"]');
    expect(compose.slice(compose.indexOf('  broker-2:\n'), compose.indexOf('  haproxy:\n'))).toContain('healthcheck: *broker-health');
    const script = read('server/scripts/healthcheck.mjs');
    expect(script).toContain(`process.env.BROKER_HTTP_PORT || ${defaults.brokerHttp.port}`);
    expect(script).toContain("path: '/readyz'");
  });
});
