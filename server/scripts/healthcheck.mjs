// The container's HEALTHCHECK: GET /readyz on the API, trusting only ENROLLD_HOME's root CA. Exit 0 when it answers
// 200 (ready: database, and in `enrolld up` the broker's revocation state and cluster bus), 1 otherwise. Run as `node server/scripts/healthcheck.mjs`.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';

const home = process.env.ENROLLD_HOME ?? './.enrolld';
const port = Number(process.env.HTTPS_PORT ?? 8443);
let ca;
try {
  ca = readFileSync(path.join(home, 'ca', 'root.pem'));
} catch {
  process.stderr.write(`no root CA at ${path.join(home, 'ca', 'root.pem')} yet\n`);
  process.exit(1);
}
const request = https.get({ host: 'localhost', port, path: '/readyz', ca, timeout: 2000 }, (res) => {
  res.resume();
  process.stdout.write(`readyz ${res.statusCode}\n`);
  process.exit(res.statusCode === 200 ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error('no answer in 2 s')));
request.on('error', (error) => {
  process.stderr.write(`readyz: ${error.message}\n`);
  process.exit(1);
});
