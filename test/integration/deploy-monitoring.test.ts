// The shipped alert rules and Grafana dashboard only name metrics that exist, where Prometheus scrapes them: a broker
// metric is on /metrics of a standalone `enrolld broker` (its BROKER_HTTP_PORT, a cluster node as deployed), every other
// on /metrics of a running `enrolld up`, with the label values they select; and the rules pass `promtool check rules`.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { routes } from '@enrolld/protocol';
import { httpsRequest } from '../support/http.js';
import { clusterPrefixFor, dropClusterKeys, TEST_REDIS_URL } from '../support/broker-harness.js';
import { freePort, REPO_ROOT, spawnBroker, type BrokerProcess } from '../support/processes.js';
import { enrollDevice } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

const run = promisify(execFile);
const RULES = path.join(REPO_ROOT, 'deploy/prometheus/alerts.yml');
const DASHBOARD = path.join(REPO_ROOT, 'deploy/grafana/enrolld.json');
/** The broker's metrics (server/src/mqtt: broker-metrics.ts, cluster-bus.ts): scraped from each broker node. */
const BROKER_ROLE = /^enrolld_(broker|revocation_enforcement)_/;
/** The live fleet events relay's (compose/cluster-events.ts): every process that publishes events has one, a broker too. */
const EVENT_RELAY = ['enrolld_fleet_events_total', 'enrolld_fleet_event_send_failures_total'];
/** The cluster bus's metrics (cluster-bus.ts): registered by a broker with BROKER_CLUSTER=redis only. */
const CLUSTER_ONLY = /^enrolld_broker_cluster_bus_/;

/** Metric names in PromQL, with the label matchers written next to them. */
function referenced(promql: string): Array<{ name: string; labels: Record<string, string> }> {
  const found: Array<{ name: string; labels: Record<string, string> }> = [];
  for (const m of promql.matchAll(/\b(enrolld_[a-z0-9_]+)(\{([^}]*)\})?/g)) {
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([a-z_]+)\s*=\s*"([^"]*)"/g)) labels[l[1]!] = l[2]!;
    found.push({ name: m[1]!, labels });
  }
  return found;
}

describe('alert rules and dashboard', () => {
  let server: TestServer;
  let exposition: string;
  let broker: BrokerProcess;
  let brokerExposition: string;
  const prefix = clusterPrefixFor('monitoring');

  beforeAll(async () => {
    server = await startTestServer();
    await enrollDevice(server, uniqueDeviceId('mon'));
    exposition = (await httpsRequest(server.apiUrl + routes.metrics, server.rootPem)).text;
    broker = await spawnBroker({
      ENROLLD_HOME: server.home, DATABASE_URL: server.db.url, LISTEN_HOST: '127.0.0.1', MQTTS_PORT: String(await freePort()),
      BROKER_CLUSTER: 'redis', REDIS_URL: TEST_REDIS_URL, BROKER_CLUSTER_PREFIX: prefix,
    });
    const res = await fetch(`http://127.0.0.1:${broker.httpPort}${routes.metrics}`);
    expect(res.status).toBe(200);
    brokerExposition = await res.text();
  }, 120_000);
  afterAll(async () => {
    await broker?.stop();
    await server?.stop();
    await dropClusterKeys(prefix);
  });

  const familiesOf = (text: string) => new Set([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1]!));
  const missingFrom = (families: Set<string>, refs: Array<{ name: string }>) =>
    refs.filter((r) => !families.has(r.name.replace(/_(bucket|sum|count)$/, '')) && !families.has(r.name)).map((r) => r.name);

  async function expressions(): Promise<string[]> {
    const rules = await readFile(RULES, 'utf8');
    const ruleExprs = [...rules.matchAll(/^\s*expr:\s*(.+)$/gm)].map((m) => m[1]!);
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    return [...ruleExprs, ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))];
  }

  it('`promtool check rules` accepts deploy/prometheus/alerts.yml', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('every metric the rules and the dashboard reference is on /metrics of the role that serves it', async () => {
    const refs = (await expressions()).flatMap(referenced);
    expect(refs.length).toBeGreaterThan(15);
    const brokerRefs = refs.filter((r) => BROKER_ROLE.test(r.name));
    expect(brokerRefs.length).toBeGreaterThan(0);
    // Broker metrics from the standalone broker's own port: what Prometheus scrapes in the scale-out form.
    expect(missingFrom(familiesOf(brokerExposition), brokerRefs)).toEqual([]);
    expect(missingFrom(familiesOf(exposition), refs.filter((r) => !BROKER_ROLE.test(r.name)))).toEqual([]);
    // `enrolld up` serves every one of them too (all roles in one registry), but the cluster bus's only in a cluster
    // (BROKER_CLUSTER=redis); this one is a single node, and the standalone broker above is a cluster node.
    expect(missingFrom(familiesOf(exposition), brokerRefs.filter((r) => !CLUSTER_ONLY.test(r.name)))).toEqual([]);
  });

  it("the standalone broker's enrolld_ metrics are exactly the broker role's, cluster bus included, and its event relay's", () => {
    const own = [...familiesOf(brokerExposition)].filter((name) => name.startsWith('enrolld_'));
    expect(own.filter((name) => !BROKER_ROLE.test(name) && !EVENT_RELAY.includes(name))).toEqual([]);
    expect(own).toEqual(expect.arrayContaining(EVENT_RELAY));
    expect([...familiesOf(exposition)]).toEqual(expect.arrayContaining(EVENT_RELAY));
    for (const name of ['enrolld_broker_connect_refusals_total', 'enrolld_broker_connected_devices', 'enrolld_broker_cluster_bus_up', 'enrolld_broker_cluster_bus_losses_total']) {
      expect(own).toContain(name);
    }
  });

  it('the fleet gauges carry the windows the rules select, with values from the database', async () => {
    for (const within of ['1d', '7d', '30d']) {
      expect(exposition).toMatch(new RegExp(`^enrolld_certificates_expiring\\{within="${within}"\\} \\d+$`, 'm'));
      expect(exposition).toMatch(new RegExp(`^enrolld_certificates_expiring_without_successor\\{within="${within}"\\} \\d+$`, 'm'));
    }
    // The test server issues 30-day certificates: the one enrolled is expiring within 30 days, not within 7.
    const value = (within: string) => Number(new RegExp(`^enrolld_certificates_expiring\\{within="${within}"\\} (\\d+)$`, 'm').exec(exposition)![1]);
    expect(value('30d')).toBeGreaterThanOrEqual(1);
    expect(value('7d')).toBe(0);
    const age = Number(/^enrolld_crl_age_seconds (\S+)$/m.exec(exposition)![1]);
    const validity = Number(/^enrolld_crl_validity_seconds (\S+)$/m.exec(exposition)![1]);
    expect(age).toBeGreaterThanOrEqual(0);
    expect(validity).toBe(7 * 86_400);
  });
});
