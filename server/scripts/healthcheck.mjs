// The container's HEALTHCHECK. `node server/scripts/healthcheck.mjs`: GET /readyz on the API, trusting only
// ENROLLD_HOME's root CA; 200 means ready (database, and in `enrolld up` the broker's revocation state and cluster bus).
// `node server/scripts/healthcheck.mjs broker`: GET /readyz on a standalone broker's plain-HTTP port (BROKER_HTTP_PORT,
// default 9883); 200 means it admits devices (revocation state current, cluster bus up and resynced). Exit 0 on 200,
// 1 otherwise.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';

function answer(request) {
  request.on('response', (res) => {
    res.resume();
    process.stdout.write(`readyz ${res.statusCode}\n`);
    process.exit(res.statusCode === 200 ? 0 : 1);
  });
  request.on('timeout', () => request.destroy(new Error('no answer in 2 s')));
  request.on('error', (error) => {
    process.stderr.write(`readyz: ${error.message}\n`);
    process.exit(1);
  });
}

if (process.argv[2] === 'broker') {
  // A wildcard bind address is reached on loopback from inside the container.
  const bind = process.env.BROKER_HTTP_HOST || process.env.LISTEN_HOST || '0.0.0.0';
  const host = bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
  const port = Number(process.env.BROKER_HTTP_PORT || 9883);
  answer(http.get({ host, port, path: '/readyz', timeout: 2000 }));
} else {
  const home = process.env.ENROLLD_HOME ?? './.enrolld';
  const port = Number(process.env.HTTPS_PORT ?? 8443);
  let ca;
  try {
    ca = readFileSync(path.join(home, 'ca', 'root.pem'));
  } catch {
    process.stderr.write(`no root CA at ${path.join(home, 'ca', 'root.pem')} yet\n`);
    process.exit(1);
  }
  answer(https.get({ host: 'localhost', port, path: '/readyz', ca, timeout: 2000 }));
}
