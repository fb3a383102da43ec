// `npm run cluster`: the scale-out topology as local processes, without Docker: 2 API replicas and 2 brokers of one
// Redis cluster over one Postgres. The first API creates the CA in ENROLLD_HOME (once); the others start after it is ready.
// Env: DATABASE_URL (required), REDIS_URL, ENROLLD_HOME (default ./.enrolld-cluster), CLUSTER_HTTPS_PORTS (8443,8444),
// CLUSTER_MQTTS_PORTS (8883,8884), CLUSTER_BROKER_HTTP_PORTS (each broker's /healthz, /readyz and /metrics: 9883,9884, or
// free ports when CLUSTER_MQTTS_PORTS is set; the line below prints them). One API per CLUSTER_HTTPS_PORTS entry, one broker
// per CLUSTER_MQTTS_PORTS entry. Ctrl-C (or SIGTERM) stops every process (each gets SIGINT, its orderly stop). A process
// that exits takes the others down, unless CLUSTER_ON_EXIT=keep: then the rest keep running (the simulator's node-kill
// storm SIGKILLs one broker on purpose). Once every API and every broker answers /readyz, one line
// `cluster ready {json}` names each process's role, pid and port, for a program that drives the cluster (device-sim
// `--spawn-cluster`, which sets CLUSTER_HAPROXY=off).
// HAProxy in front, when `haproxy` is on PATH and CLUSTER_HAPROXY is not `off`: deploy/haproxy.cfg itself, its addresses
// given by environment (LB_*): MQTT passthrough on CLUSTER_FRONT_MQTTS_PORT (7883), the API on CLUSTER_FRONT_HTTPS_PORT
// (7443), LB_MAXCONN 4096 unless set (the file's 200000 needs a higher open-files limit than a workstation's).
import { spawn } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = path.join(root, 'server', 'bin', 'enrolld.js');
if (!process.env.DATABASE_URL) {
  process.stderr.write('npm run cluster: set DATABASE_URL (one Postgres for every process), e.g. postgres://postgres@127.0.0.1:5432/enrolld\n');
  process.exit(2);
}
const home = path.resolve(process.env.ENROLLD_HOME ?? '.enrolld-cluster');
const ports = (name, fallback) => (process.env[name] ?? fallback).split(',').map((p) => Number(p.trim()));
const httpsPorts = ports('CLUSTER_HTTPS_PORTS', '8443,8444');
const mqttsPorts = ports('CLUSTER_MQTTS_PORTS', '8883,8884');
const haproxy = haproxyPlan();
const brokerHttpPorts = ports('CLUSTER_BROKER_HTTP_PORTS', process.env.CLUSTER_MQTTS_PORTS ? mqttsPorts.map(() => 0).join(',') : '9883,9884');
// This script and HAProxy check each broker's /readyz on a port they must know: pick free ones instead of letting each
// broker choose.
for (let i = 0; i < mqttsPorts.length; i++) if (!brokerHttpPorts[i]) brokerHttpPorts[i] = await freePort();
brokerHttpPorts.length = mqttsPorts.length;
const keepOnExit = process.env.CLUSTER_ON_EXIT === 'keep';
const base = { ...process.env, ENROLLD_HOME: home, BROKER_CLUSTER: 'redis' };

const children = [];
let stopping = false;
const running = (child) => child.exitCode === null && child.signalCode === null;
// Brokers run with their OpenSSL settings (no TLS 1.3 tickets no client could resume with; docs/architecture.md §6).
const brokerOpenssl = `--openssl-config=${path.join(root, 'deploy/openssl-broker.cnf')}`;
function start(name, role, env, port) {
  const args = role === 'broker' && base.BROKER_SESSION_TICKETS !== 'on' ? [brokerOpenssl, bin, role] : [bin, role];
  const child = spawn(process.execPath, args, { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) process.stdout.write(`${name.padEnd(8)} ${line}\n`);
    });
  }
  child.on('exit', (code, signal) => {
    process.stdout.write(`${name.padEnd(8)} exited (${signal ?? code})\n`);
    if (!stopping && !(keepOnExit && children.some((c) => running(c.child)))) stop(1);
  });
  children.push({ name, role, port, child });
  return child;
}

/** Whether to run HAProxy (null: say why not), from PATH, CLUSTER_HAPROXY and the two-of-each servers of haproxy.cfg. */
function haproxyPlan() {
  if (process.env.CLUSTER_HAPROXY === 'off') return null;
  const found = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, 'haproxy')).find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) {
    process.stdout.write('cluster: haproxy is not on PATH; running without a front (install haproxy, or CLUSTER_HAPROXY=off to silence this)\n');
    return null;
  }
  if (httpsPorts.length !== 2 || mqttsPorts.length !== 2) {
    process.stdout.write('cluster: deploy/haproxy.cfg fronts exactly 2 APIs and 2 brokers; running without HAProxy\n');
    return null;
  }
  return { bin: found, mqtts: Number(process.env.CLUSTER_FRONT_MQTTS_PORT ?? 7883), https: Number(process.env.CLUSTER_FRONT_HTTPS_PORT ?? 7443) };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** HAProxy on deploy/haproxy.cfg, its addresses from LB_* (the file's defaults are docker-compose's names). */
function startHaproxy() {
  const env = {
    ...process.env,
    LB_MAXCONN: process.env.LB_MAXCONN ?? '4096',
    LB_MQTTS_BIND: `:${haproxy.mqtts}`,
    LB_HTTPS_BIND: `:${haproxy.https}`,
    LB_BROKER_1: `127.0.0.1:${mqttsPorts[0]}`,
    LB_BROKER_2: `127.0.0.1:${mqttsPorts[1]}`,
    LB_BROKER_1_HTTP_PORT: String(brokerHttpPorts[0]),
    LB_BROKER_2_HTTP_PORT: String(brokerHttpPorts[1]),
    LB_API_1: `127.0.0.1:${httpsPorts[0]}`,
    LB_API_2: `127.0.0.1:${httpsPorts[1]}`,
  };
  // -db: stay in the foreground with its log on stderr, stopped by SIGINT as the other children are.
  const child = spawn(haproxy.bin, ['-db', '-f', path.join(root, 'deploy', 'haproxy.cfg')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) process.stdout.write(`haproxy  ${line}\n`);
    });
  }
  child.on('exit', (code, signal) => {
    process.stdout.write(`haproxy  exited (${signal ?? code})\n`);
    if (!stopping) stop(1);
  });
  children.push({ name: 'haproxy', role: 'haproxy', port: haproxy.mqtts, child });
}

function stop(code) {
  stopping = true;
  for (const { child } of children) if (running(child)) child.kill('SIGINT');
  Promise.all(children.map(({ child }) => (running(child) ? new Promise((r) => child.once('exit', r)) : undefined))).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

/** Resolves when the API on `port` answers /readyz with 200 (trusting the CA it created). */
async function ready(port) {
  for (;;) {
    const status = await new Promise((resolve) => {
      let ca;
      try {
        ca = readFileSync(path.join(home, 'ca', 'root.pem'));
      } catch {
        return resolve(0);
      }
      https.get({ host: 'localhost', port, path: '/readyz', ca, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', () => resolve(0));
    });
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Resolves when the broker's /readyz on its plain-HTTP port answers 200. */
async function brokerReady(port) {
  for (;;) {
    const status = await new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port, path: '/readyz', timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode);
      }).on('error', () => resolve(0));
    });
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

start('api-1', 'api', { HTTPS_PORT: String(httpsPorts[0]) }, httpsPorts[0]);
await ready(httpsPorts[0]);
httpsPorts.slice(1).forEach((port, i) => start(`api-${i + 2}`, 'api', { HTTPS_PORT: String(port) }, port));
mqttsPorts.forEach((port, i) => start(`broker-${i + 1}`, 'broker', { MQTTS_PORT: String(port), BROKER_HTTP_PORT: String(brokerHttpPorts[i]) }, port));
process.stdout.write(
  `cluster: API on https://localhost:{${httpsPorts.join(',')}}, brokers on mqtts://localhost:{${mqttsPorts.join(',')}} ` +
    `with /healthz, /readyz, /metrics on http://localhost:{${brokerHttpPorts.join(',')}}, ENROLLD_HOME=${home}\n`,
);
if (haproxy) {
  // HAProxy counts a server up until its first check fails: start it once every API and broker is ready, so it never
  // sends a connection to one that is still starting.
  await Promise.all([...httpsPorts.slice(1).map((port) => ready(port)), ...brokerHttpPorts.map((port) => brokerReady(port))]);
  startHaproxy();
  process.stdout.write(`cluster: HAProxy in front: https://localhost:${haproxy.https} (APIs), mqtts://localhost:${haproxy.mqtts} (brokers, TLS passthrough)\n`);
}
// Readiness from each process's /readyz, not from its log lines: LOG_LEVEL=warn prints none of them.
await Promise.all([...httpsPorts.slice(1).map((port) => ready(port)), ...brokerHttpPorts.map((port) => brokerReady(port))]);
const status = { home, processes: children.map(({ name, role, port, child }) => ({ name, role, port, pid: child.pid })) };
process.stdout.write(`cluster ready ${JSON.stringify(status)}\n`);
