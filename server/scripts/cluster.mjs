// `npm run cluster`: the scale-out topology as local processes, without Docker: 2 API replicas and 2 brokers of one
// Redis cluster over one Postgres. The first API creates the CA in ENROLLD_HOME (once); the others start after it is ready.
// Env: DATABASE_URL (required), REDIS_URL, ENROLLD_HOME (default ./.enrolld-cluster), CLUSTER_HTTPS_PORTS (8443,8444: one
// API per port), CLUSTER_MQTTS_PORTS (8883,8884: one broker per port), CLUSTER_BROKER_HTTP_PORTS (each broker's /healthz,
// /readyz and /metrics: 9883,9884, or free ports when CLUSTER_MQTTS_PORTS is set; each broker prints its own). Ctrl-C (or
// SIGTERM) stops every process (each gets SIGINT, its orderly stop). A process that exits takes the others down, unless
// CLUSTER_ON_EXIT=keep: then the rest keep running (the simulator's node-kill storm SIGKILLs one broker on purpose).
// Once every API answers /readyz and every broker listens, one line `cluster ready {json}` names each process's role,
// pid and port, for a program that drives the cluster (device-sim `--spawn-cluster`).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
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
const keepOnExit = process.env.CLUSTER_ON_EXIT === 'keep';
const brokerHttpPorts = ports('CLUSTER_BROKER_HTTP_PORTS', process.env.CLUSTER_MQTTS_PORTS ? mqttsPorts.map(() => 0).join(',') : '9883,9884');
const base = { ...process.env, ENROLLD_HOME: home, BROKER_CLUSTER: 'redis' };

const children = [];
let stopping = false;
function start(name, role, env, port) {
  const child = spawn(process.execPath, [bin, role], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let listening;
  const listens = new Promise((resolve) => (listening = resolve));
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        if (line.includes('"MQTT broker listening (mTLS)"')) listening();
        process.stdout.write(`${name.padEnd(8)} ${line}\n`);
      }
    });
  }
  child.on('exit', (code, signal) => {
    process.stdout.write(`${name.padEnd(8)} exited (${signal ?? code})\n`);
    if (!stopping && !(keepOnExit && children.some((c) => c.child.exitCode === null && c.child.signalCode === null))) stop(1);
  });
  children.push({ name, role, port, child, listens });
}

function stop(code) {
  stopping = true;
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  Promise.all(children.map(({ child }) => (child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : undefined))).then(() => process.exit(code));
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

start('api-1', 'api', { HTTPS_PORT: String(httpsPorts[0]) }, httpsPorts[0]);
await ready(httpsPorts[0]);
httpsPorts.slice(1).forEach((port, i) => start(`api-${i + 2}`, 'api', { HTTPS_PORT: String(port) }, port));
mqttsPorts.forEach((port, i) => start(`broker-${i + 1}`, 'broker', { MQTTS_PORT: String(port), BROKER_HTTP_PORT: String(brokerHttpPorts[i] ?? 0) }, port));
await Promise.all(httpsPorts.slice(1).map((port) => ready(port)));
await Promise.all(children.filter((c) => c.role === 'broker').map((c) => c.listens));
process.stdout.write(
  `cluster: API on https://localhost:{${httpsPorts.join(',')}}, brokers on mqtts://localhost:{${mqttsPorts.join(',')}} ` +
    `with /healthz, /readyz, /metrics on http://localhost:{${mqttsPorts.map((_, i) => brokerHttpPorts[i] || 'any').join(',')}}, ENROLLD_HOME=${home}\n`,
);
const status = { home, processes: children.map(({ name, role, port, child }) => ({ name, role, port, pid: child.pid })) };
process.stdout.write(`cluster ready ${JSON.stringify(status)}\n`);
